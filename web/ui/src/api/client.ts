/**
 * The one way the app talks to the server's session API (/api).
 *
 * Every request is same-origin with the session cookie. State-changing requests carry the CSRF
 * token in `X-CSRF-Token`: it comes from GET /api/session and is replaced by the one in any answer
 * that carries `csrfToken` (sign-in, setup, invitation accept, TOTP: the token is bound to the
 * session and changes with it). Errors become a typed `ApiError`.
 */

/** Server ids: numbers from SQL, or strings; always sent back as they came. */
export type Id = string | number;

export type ErrorBody = { error: { code: string; message: string; field?: string | null } };

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field: string | null;
  /** Seconds to wait before trying again, from Retry-After (429), or null. */
  readonly retryAfter: number | null;

  constructor(
    status: number,
    code: string,
    message: string,
    field: string | null = null,
    retryAfter: number | null = null,
  ) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.field = field;
    this.retryAfter = retryAfter;
  }
}

export const NETWORK_ERROR_MESSAGE =
  "Could not reach the server. Check your connection and try again.";

const UNSAFE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

let csrfToken: string | null = null;
const unauthenticatedListeners = new Set<() => void>();

export function getCsrfToken(): string | null {
  return csrfToken;
}

export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

/** Called when a request answers 401: the session ended (signed out elsewhere, expired). */
export function onUnauthenticated(listener: () => void): () => void {
  unauthenticatedListeners.add(listener);
  return () => unauthenticatedListeners.delete(listener);
}

export type RequestOptions = {
  /** Parse the answer as text instead of JSON (e.g. a zone file). */
  text?: boolean;
  signal?: AbortSignal;
  /** Do not tell the unauthenticated listeners about a 401 (the session probe itself). */
  quietUnauthenticated?: boolean;
};

export async function request<T>(
  method: string,
  path: string,
  body?: unknown,
  options: RequestOptions = {},
): Promise<T> {
  const unsafe = UNSAFE_METHODS.has(method);
  if (unsafe && csrfToken === null) {
    await refreshCsrfToken();
  }
  let response = await send(method, path, body, options);
  if (unsafe && response.status === 403) {
    // A stale token (the session changed in another tab): fetch a fresh one and try once more.
    const problem = await readError(response.clone());
    if (problem?.code === "csrf_failed") {
      await refreshCsrfToken();
      response = await send(method, path, body, options);
    }
  }
  return handle<T>(response, options);
}

async function send(
  method: string,
  path: string,
  body: unknown,
  options: RequestOptions,
): Promise<Response> {
  const headers: Record<string, string> = { Accept: options.text ? "text/plain" : "application/json" };
  // A Blob (an uploaded file) is the body as is; anything else is sent as JSON.
  const raw = body instanceof Blob;
  if (body !== undefined) headers["Content-Type"] = raw ? body.type || "application/octet-stream" : "application/json";
  if (UNSAFE_METHODS.has(method) && csrfToken !== null) headers["X-CSRF-Token"] = csrfToken;
  try {
    return await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : raw ? body : JSON.stringify(body),
      credentials: "same-origin",
      signal: options.signal,
    });
  } catch (error) {
    if (error instanceof DOMException && error.name === "AbortError") throw error;
    throw new ApiError(0, "network", NETWORK_ERROR_MESSAGE);
  }
}

async function handle<T>(response: Response, options: RequestOptions): Promise<T> {
  if (response.ok) {
    if (response.status === 204) return undefined as T;
    if (options.text) return (await response.text()) as T;
    const text = await response.text();
    if (text === "") return undefined as T;
    const data: unknown = JSON.parse(text);
    rememberCsrfToken(data);
    return data as T;
  }
  const problem = await readError(response);
  const retryAfter = parseRetryAfter(response.headers.get("Retry-After"));
  // Only "the session is gone" signs the app out; a wrong current password is a 401 too.
  if (response.status === 401 && problem?.code === "unauthenticated" && !options.quietUnauthenticated) {
    for (const listener of unauthenticatedListeners) listener();
  }
  if (problem) {
    throw new ApiError(response.status, problem.code, problem.message, problem.field ?? null, retryAfter);
  }
  throw new ApiError(
    response.status,
    `http_${response.status}`,
    response.status >= 500
      ? "The server had a problem handling this. Try again in a moment."
      : `The request failed (HTTP ${response.status}).`,
    null,
    retryAfter,
  );
}

async function readError(response: Response): Promise<ErrorBody["error"] | null> {
  try {
    const data = (await response.json()) as Partial<ErrorBody>;
    const error = data?.error;
    if (error && typeof error.code === "string" && typeof error.message === "string") return error;
  } catch {
    // Not JSON (a proxy's error page, say): the caller words a generic message.
  }
  return null;
}

function rememberCsrfToken(data: unknown): void {
  if (data && typeof data === "object" && "csrfToken" in data) {
    const token = (data as { csrfToken: unknown }).csrfToken;
    if (typeof token === "string" && token !== "") csrfToken = token;
  }
}

export function parseRetryAfter(value: string | null): number | null {
  if (value === null) return null;
  const seconds = Number(value.trim());
  if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds);
  const date = Date.parse(value);
  if (Number.isNaN(date)) return null;
  return Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

async function refreshCsrfToken(): Promise<void> {
  const response = await send("GET", "/api/session", undefined, {});
  await handle<unknown>(response, { quietUnauthenticated: true });
}

export const api = {
  get: <T>(path: string, options?: RequestOptions) => request<T>("GET", path, undefined, options),
  post: <T>(path: string, body?: unknown, options?: RequestOptions) =>
    request<T>("POST", path, body ?? {}, options),
  put: <T>(path: string, body?: unknown, options?: RequestOptions) =>
    request<T>("PUT", path, body ?? {}, options),
  patch: <T>(path: string, body?: unknown, options?: RequestOptions) =>
    request<T>("PATCH", path, body ?? {}, options),
  delete: <T = void>(path: string, body?: unknown, options?: RequestOptions) =>
    request<T>("DELETE", path, body, options),
};

/** A path segment, escaped (`encodeURIComponent`), for building /api paths from user data. */
export function seg(value: string): string {
  return encodeURIComponent(value);
}
