/**
 * Typed errors. Every error the API answers with has the shape
 * `{"error": {"code": "...", "message": "...", "field": "..."}}`; the client turns it into the
 * subclass of `MailmarkError` that matches the HTTP status, so callers can branch with `instanceof`.
 */

export interface MailmarkErrorOptions {
  status: number;
  code: string;
  message: string;
  field?: string | undefined;
  body?: unknown;
}

export class MailmarkError extends Error {
  /** The HTTP status (0 when no response arrived). */
  readonly status: number;
  /** A stable machine-readable code, e.g. `invalid_input`, `not_found`, `rate_limited`. */
  readonly code: string;
  /** The request field the error is about, when the server named one. */
  readonly field: string | undefined;
  /** The decoded response body, as the server sent it. */
  readonly body: unknown;

  constructor(options: MailmarkErrorOptions) {
    super(options.message);
    this.name = new.target.name;
    this.status = options.status;
    this.code = options.code;
    this.field = options.field;
    this.body = options.body;
  }
}

/** 401: the API key is missing, malformed, unknown or revoked. */
export class AuthenticationError extends MailmarkError {}

/** 403: the account may not do this now (paused account, plan quota reached). */
export class PermissionDeniedError extends MailmarkError {}

/** 404: nothing with that id or address exists on the API key's domain. */
export class NotFoundError extends MailmarkError {}

/** 409: it exists already (a mailbox address, an idempotency key reused with another body). */
export class ConflictError extends MailmarkError {}

/** 400, 413 and 422: the request was refused as invalid; `field` names the culprit. */
export class ValidationError extends MailmarkError {}

/** 429: too many requests; wait `retryAfter` seconds before the next one. */
export class RateLimitError extends MailmarkError {
  /** Seconds to wait, from the `Retry-After` header (undefined when absent). */
  readonly retryAfter: number | undefined;

  constructor(options: MailmarkErrorOptions & { retryAfter?: number | undefined }) {
    super(options);
    this.retryAfter = options.retryAfter;
  }
}

/** 5xx: the server failed; the request may be retried later. */
export class ServerError extends MailmarkError {}

/** No HTTP response: the connection failed or the request timed out (`status` is 0). */
export class APIConnectionError extends MailmarkError {}

/** Seconds from a Retry-After value: delta-seconds or an HTTP-date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - now) / 1000));
}

function errorFields(body: unknown, status: number): { code: string; message: string; field?: string } {
  if (typeof body === "object" && body !== null && "error" in body) {
    const error = (body as { error: unknown }).error;
    if (typeof error === "string") return { code: defaultCode(status), message: error };
    if (typeof error === "object" && error !== null) {
      const { code, message, field } = error as Record<string, unknown>;
      return {
        code: typeof code === "string" ? code : defaultCode(status),
        message: typeof message === "string" ? message : `HTTP ${status}`,
        ...(typeof field === "string" ? { field } : {}),
      };
    }
  }
  return { code: defaultCode(status), message: `HTTP ${status}` };
}

function defaultCode(status: number): string {
  if (status === 401) return "unauthorized";
  if (status === 403) return "forbidden";
  if (status === 404) return "not_found";
  if (status === 409) return "conflict";
  if (status === 429) return "rate_limited";
  if (status >= 500) return "server_error";
  return "invalid_input";
}

/** The typed error for a non-2xx response. */
export function errorFromResponse(status: number, body: unknown, headers: Headers): MailmarkError {
  const options: MailmarkErrorOptions = { status, body, ...errorFields(body, status) };
  if (status === 401) return new AuthenticationError(options);
  if (status === 403) return new PermissionDeniedError(options);
  if (status === 404) return new NotFoundError(options);
  if (status === 409) return new ConflictError(options);
  if (status === 429) {
    return new RateLimitError({ ...options, retryAfter: parseRetryAfter(headers.get("retry-after")) });
  }
  if (status >= 500) return new ServerError(options);
  if (status >= 400) return new ValidationError(options);
  return new MailmarkError(options);
}
