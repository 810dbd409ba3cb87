import assert from "node:assert/strict";
import { test } from "node:test";

import { ConflictError, NotFoundError, ValidationError } from "../dist/index.js";
import { client, sender, unique } from "./live.js";

async function scheduled(to) {
  return client.send({
    from: sender,
    to,
    subject: "Later",
    text: "x",
    scheduledAt: new Date(Date.now() + 3600 * 1000),
  });
}

test("a scheduled email is rescheduled with a Date, then canceled", async () => {
  const recipient = `${unique("later-")}@example.com`;
  const sent = await scheduled([recipient]);
  const when = new Date(Math.floor(Date.now() / 1000) * 1000 + 24 * 3600 * 1000);

  const moved = await client.rescheduleEmail(sent.messageId, when);
  assert.equal(moved.messageId, sent.messageId);
  assert.equal(moved.status, "queued");
  assert.equal(new Date(moved.scheduledAt).getTime(), when.getTime());

  const result = await client.cancelEmail(moved._id);
  assert.deepEqual(result, {
    _id: moved._id,
    messageId: sent.messageId,
    status: "canceled",
    canceled: [recipient],
    notCanceled: [],
  });
  const detail = await client.getEmail(moved._id);
  assert.deepEqual(detail.recipients.map((r) => r.status), ["canceled"]);
  assert.ok(detail.events.some((e) => e.type === "email.canceled"));
});

test("an email with nothing waiting cannot be canceled or rescheduled again", async () => {
  const sent = await scheduled([`${unique("gone-")}@example.com`]);
  await client.cancelEmail(sent.messageId);
  await assert.rejects(client.cancelEmail(sent.messageId), (error) => {
    assert.ok(error instanceof ConflictError, `${error}`);
    assert.equal(error.status, 409);
    return true;
  });
  await assert.rejects(client.rescheduleEmail(sent.messageId, Date.now() + 7200_000), ConflictError);
  await assert.rejects(client.cancelEmail("999999"), NotFoundError);
});

test("a reschedule into the past is a ValidationError naming scheduledAt", async () => {
  const sent = await scheduled([`${unique("past-")}@example.com`]);
  await assert.rejects(client.rescheduleEmail(sent.messageId, Date.now() - 60_000), (error) => {
    assert.ok(error instanceof ValidationError, `${error}`);
    assert.equal(error.field, "scheduledAt");
    return true;
  });
});
