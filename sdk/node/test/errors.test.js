import assert from "node:assert/strict";
import { test } from "node:test";

import {
  APIConnectionError,
  AuthenticationError,
  Mailmark,
  MailmarkError,
  RateLimitError,
  parseRetryAfter,
} from "../dist/index.js";
import { baseUrl, spareApiKey } from "./live.js";

test("an unknown API key is an AuthenticationError (401)", async () => {
  const stranger = new Mailmark(`dm_live_${"x".repeat(40)}`, { baseUrl });
  await assert.rejects(stranger.listMailboxes(), (error) => {
    assert.ok(error instanceof AuthenticationError);
    assert.ok(error instanceof MailmarkError);
    assert.equal(error.status, 401);
    assert.ok(error.message.length > 0);
    return true;
  });
});

test("an empty API key is refused before any request", () => {
  assert.throws(() => new Mailmark("", { baseUrl }), TypeError);
});

test("a closed port is an APIConnectionError with status 0", async () => {
  const closed = new Mailmark("dm_live_whatever", { baseUrl: "http://127.0.0.1:9", timeoutMs: 5000 });
  await assert.rejects(closed.listMailboxes(), (error) => {
    assert.ok(error instanceof APIConnectionError, `${error}`);
    assert.equal(error.status, 0);
    assert.equal(error.code, "connection_failed");
    return true;
  });
});

test("going over the rate limit is a RateLimitError with retryAfter", async () => {
  const spare = new Mailmark(spareApiKey, { baseUrl });
  let limited;
  // 50 at once outrun the refill (20 a second in the suite's server) until the burst is spent.
  for (let round = 0; round < 20 && !limited; round += 1) {
    const results = await Promise.allSettled(Array.from({ length: 50 }, () => spare.listMailboxes()));
    limited = results.find((result) => result.status === "rejected")?.reason;
  }
  assert.ok(limited instanceof RateLimitError, `no 429 after 1,000 requests (got ${limited})`);
  assert.equal(limited.status, 429);
  assert.equal(typeof limited.retryAfter, "number");
  assert.ok(limited.retryAfter >= 1);
});

test("parseRetryAfter reads seconds and HTTP dates", () => {
  assert.equal(parseRetryAfter("7"), 7);
  assert.equal(parseRetryAfter(null), undefined);
  assert.equal(parseRetryAfter("soon"), undefined);
  const now = Date.parse("Thu, 03 Dec 2026 12:00:00 GMT");
  assert.equal(parseRetryAfter("Thu, 03 Dec 2026 12:00:30 GMT", now), 30);
});
