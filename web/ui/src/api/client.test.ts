import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { fakeServer, problem, signedOutSession } from "../test/fakeServer";
import { api, ApiError, getCsrfToken, NETWORK_ERROR_MESSAGE, onUnauthenticated, parseRetryAfter, setCsrfToken } from "./client";

beforeEach(() => setCsrfToken(null));
afterEach(() => vi.unstubAllGlobals());

const me = { id: 1, email: "ann@acme.test", name: "Ann", role: "owner", accountName: "Acme", accountId: 1, totpEnabled: false };

describe("CSRF token", () => {
  it("fetches a token from /api/session before the first state-changing request and sends it", async () => {
    const server = fakeServer({
      "GET /api/session": { json: signedOutSession },
      "POST /api/auth/password-reset": { status: 202 },
    });
    await api.post("/api/auth/password-reset", { email: "ann@acme.test" });
    expect(server.requests.map((r) => `${r.method} ${r.path}`)).toEqual(["GET /api/session", "POST /api/auth/password-reset"]);
    expect(server.requests[1]!.headers["X-CSRF-Token"]).toBe("csrf-anonymous");
    expect(server.requests[1]!.headers["Content-Type"]).toBe("application/json");
  });

  it("does not send the token on reads", async () => {
    setCsrfToken("t1");
    const server = fakeServer({ "GET /api/me": { json: { ...me, csrfToken: "t1" } } });
    await api.get("/api/me");
    expect(server.requests[0]!.headers["X-CSRF-Token"]).toBeUndefined();
  });

  it("takes the new token from a sign-in answer and uses it next", async () => {
    setCsrfToken("before");
    const server = fakeServer({
      "POST /api/auth/sign-in": { json: { ...me, csrfToken: "after-sign-in" } },
      "POST /api/auth/sign-out": { status: 204 },
    });
    await api.post("/api/auth/sign-in", { email: "ann@acme.test", password: "x" });
    expect(getCsrfToken()).toBe("after-sign-in");
    await api.post("/api/auth/sign-out");
    expect(server.requests[0]!.headers["X-CSRF-Token"]).toBe("before");
    expect(server.requests[1]!.headers["X-CSRF-Token"]).toBe("after-sign-in");
  });

  it("refreshes a stale token once on csrf_failed and repeats the request", async () => {
    setCsrfToken("stale");
    const server = fakeServer({
      "PATCH /api/me": [
        { status: 403, json: problem("csrf_failed", "This page is out of date; reload it and try again.") },
        { json: { ...me, name: "Ann B" } },
      ],
      "GET /api/session": { json: { ...signedOutSession, signedIn: true, csrfToken: "fresh" } },
    });
    const answer = await api.patch<{ name: string }>("/api/me", { name: "Ann B" });
    expect(answer.name).toBe("Ann B");
    expect(server.requests.map((r) => `${r.method} ${r.path} ${r.headers["X-CSRF-Token"] ?? ""}`.trim())).toEqual([
      "PATCH /api/me stale",
      "GET /api/session",
      "PATCH /api/me fresh",
    ]);
  });

  it("gives up after one retry when the token is still refused", async () => {
    setCsrfToken("stale");
    const refused = { status: 403, json: problem("csrf_failed", "This page is out of date; reload it and try again.") };
    const server = fakeServer({ "DELETE /api/me/sessions/3": refused, "GET /api/session": { json: signedOutSession } });
    await expect(api.delete("/api/me/sessions/3")).rejects.toMatchObject({ status: 403, code: "csrf_failed" });
    expect(server.requests.filter((r) => r.method === "DELETE")).toHaveLength(2);
  });

  it("does not retry other 403s", async () => {
    setCsrfToken("t");
    const server = fakeServer({
      "POST /api/team/invitations": { status: 403, json: problem("forbidden", "Only an owner or an admin can invite people.") },
    });
    await expect(api.post("/api/team/invitations", {})).rejects.toMatchObject({ code: "forbidden" });
    expect(server.requests).toHaveLength(1);
  });
});

describe("errors", () => {
  it("turns the error body into an ApiError with code, message and field", async () => {
    setCsrfToken("t");
    fakeServer({ "POST /api/setup": { status: 422, json: problem("invalid_input", "Passwords must be at least 8 characters long.", "password") } });
    const error = await api.post("/api/setup", {}).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 422, code: "invalid_input", field: "password", message: "Passwords must be at least 8 characters long." });
  });

  it("reads Retry-After on 429", async () => {
    setCsrfToken("t");
    fakeServer({
      "POST /api/auth/sign-in": {
        status: 429,
        json: problem("too_many_attempts", "Too many failed sign-ins; try again in 42 seconds."),
        headers: { "Retry-After": "42" },
      },
    });
    await expect(api.post("/api/auth/sign-in", {})).rejects.toMatchObject({ code: "too_many_attempts", retryAfter: 42 });
  });

  it("words a non-JSON failure (a proxy's error page) for a person", async () => {
    fakeServer({ "GET /api/account": { status: 502, text: "<html>Bad gateway</html>" } });
    await expect(api.get("/api/account")).rejects.toMatchObject({
      status: 502,
      code: "http_502",
      message: "The server had a problem handling this. Try again in a moment.",
    });
  });

  it("says the server cannot be reached when fetch fails", async () => {
    fakeServer({ "GET /api/me": { status: 0 } });
    await expect(api.get("/api/me")).rejects.toMatchObject({ code: "network", message: NETWORK_ERROR_MESSAGE });
  });

  it("signs the app out only on unauthenticated, not on a wrong current password", async () => {
    setCsrfToken("t");
    const listener = vi.fn();
    const stop = onUnauthenticated(listener);
    fakeServer({
      "POST /api/me/password": { status: 401, json: problem("invalid_credentials", "The current password is not right.", "currentPassword") },
      "GET /api/me": { status: 401, json: problem("unauthenticated", "Sign in to continue.") },
    });
    await expect(api.post("/api/me/password", {})).rejects.toMatchObject({ field: "currentPassword" });
    expect(listener).not.toHaveBeenCalled();
    await expect(api.get("/api/me")).rejects.toMatchObject({ code: "unauthenticated" });
    expect(listener).toHaveBeenCalledTimes(1);
    stop();
  });

  it("parses Retry-After as seconds or as an HTTP date", () => {
    expect(parseRetryAfter("7")).toBe(7);
    expect(parseRetryAfter(null)).toBeNull();
    expect(parseRetryAfter("soon")).toBeNull();
    const inTenSeconds = new Date(Date.now() + 10_000).toUTCString();
    expect(parseRetryAfter(inTenSeconds)).toBeGreaterThanOrEqual(9);
    expect(parseRetryAfter(inTenSeconds)).toBeLessThanOrEqual(11);
  });
});

describe("uploads", () => {
  it("sends a Blob as the body as is, with its type and the CSRF token", async () => {
    setCsrfToken("csrf-1");
    const { fetch } = fakeServer({ "POST /api/contacts/import": { status: 202, json: { _id: "3" } } });
    const file = new Blob(["email\r\nann@example.com\r\n"], { type: "text/csv" });
    expect(await api.post("/api/contacts/import", file)).toEqual({ _id: "3" });
    const init = fetch.mock.calls[0]![1]!;
    expect(init.body).toBe(file);
    expect(init.headers).toMatchObject({ "Content-Type": "text/csv", "X-CSRF-Token": "csrf-1" });
  });
});
