import { vi } from "vitest";

export type Recorded = { method: string; path: string; headers: Record<string, string>; body: unknown };
type Reply = { status?: number; json?: unknown; text?: string; headers?: Record<string, string> };
/** A route may answer later (a promise), to show what the page does while it waits. */
type Route = (request: Recorded) => Reply | undefined | Promise<Reply | undefined>;

/**
 * A stand-in for the server behind `fetch`: routes answer by method and path, every request is
 * recorded. The client's own logic (CSRF, errors) runs unchanged against it.
 */
export function fakeServer(routes: Record<string, Reply | Route | Array<Reply | Route>>) {
  const requests: Recorded[] = [];
  const calls: Record<string, number> = {};
  const fetch = vi.fn(async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const method = (init.method ?? "GET").toUpperCase();
    const path = String(input);
    const headers = Object.fromEntries(Object.entries((init.headers as Record<string, string>) ?? {}));
    const body = typeof init.body === "string" ? JSON.parse(init.body) : undefined;
    const request = { method, path, headers, body };
    requests.push(request);
    const key = `${method} ${path}`;
    const route = routes[key];
    if (route === undefined) return new Response(JSON.stringify({ error: { code: "not_found", message: "Not Found" } }), { status: 404 });
    const index = calls[key] ?? 0;
    calls[key] = index + 1;
    const entry = Array.isArray(route) ? route[Math.min(index, route.length - 1)]! : route;
    const reply = (typeof entry === "function" ? await entry(request) : entry) ?? {};
    if (reply.status === 0) throw new TypeError("Failed to fetch");
    const status = reply.status ?? 200;
    const content = reply.text ?? (reply.json === undefined ? null : JSON.stringify(reply.json));
    return new Response(status === 204 ? null : content, {
      status,
      headers: { "Content-Type": reply.text !== undefined ? "text/plain" : "application/json", ...reply.headers },
    });
  });
  vi.stubGlobal("fetch", fetch);
  return { fetch, requests };
}

export function problem(code: string, message: string, field: string | null = null) {
  return { error: { code, message, field } };
}

export const signedOutSession = {
  signedIn: false,
  setupRequired: false,
  signupOpen: false,
  oidcProviders: [],
  csrfToken: "csrf-anonymous",
  user: null,
};
