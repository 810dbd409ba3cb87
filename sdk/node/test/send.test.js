import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

import { MailmarkError, NotFoundError, ValidationError } from "../dist/index.js";
import { client, sender, unique } from "./live.js";

test("a transactional send is queued and listed", async () => {
  const subject = unique("Hello from node ");
  const recipient = `${unique("r-")}@example.com`;
  const result = await client.send({
    from: sender,
    to: recipient,
    subject,
    html: "<p>It works!</p>",
  });
  assert.equal(result.status, "queued");
  assert.equal(typeof result.messageId, "string");
  assert.ok(result.messageId.length > 0);

  const page = await client.listEmails({ from: sender });
  const email = page.data.find((item) => item.messageId === result.messageId);
  assert.ok(email, `message ${result.messageId} not in listEmails`);
  assert.equal(email.subject, subject);
  assert.deepEqual(email.to, [recipient]);

  const detail = await client.getEmail(result.messageId);
  assert.equal(detail._id, email._id);
  assert.deepEqual(detail.recipients.map((r) => r.address), [recipient]);
  assert.ok(Array.isArray(detail.events));
});

test("a campaign sends one email per recipient under one batchId", async () => {
  const [ann, bob, cy] = ["ann-", "bob-", "cy-"].map((name) => `${unique(name)}@example.com`);
  const result = await client.send({
    type: "campaign",
    from: sender,
    to: [ann, bob, cy],
    subject: "Hi {{firstName}}",
    text: "Hello {{firstName}}!",
    variables: { [ann]: { firstName: "Ann" }, [bob]: { firstName: "Bob" } },
  });
  assert.equal(result.status, "queued");
  assert.equal(result.messageIds.length, 3);
  assert.equal(new Set(result.messageIds).size, 3);
  assert.equal(typeof result.batchId, "string");

  const page = await client.listEmails({ batchId: result.batchId });
  assert.deepEqual(page.data.map((email) => email.messageId).sort(), [...result.messageIds].sort());
  const subjects = page.data.map((email) => email.subject).sort();
  assert.ok(subjects.includes("Hi Ann") && subjects.includes("Hi Bob"), subjects.join(", "));
});

test("listEmails pages newest first with a cursor", async () => {
  const ids = [];
  for (let i = 0; i < 3; i += 1) {
    const to = [`${unique("pager-")}@example.com`];
    ids.push((await client.send({ from: sender, to, subject: `Page ${i}`, text: "x" })).messageId);
  }
  const seen = [];
  let page = await client.listEmails({ from: sender, limit: 2 });
  assert.ok(page.data.length <= 2);
  seen.push(...page.data.map((email) => email.messageId));
  for (let guard = 0; page.nextCursor && guard < 100; guard += 1) {
    page = await client.listEmails({ from: sender, limit: 2, cursor: page.nextCursor });
    seen.push(...page.data.map((email) => email.messageId));
  }
  assert.equal(new Set(seen).size, seen.length, "a page repeated an email");
  const newest = [...ids].reverse();
  assert.deepEqual(seen.slice(0, 3), newest);

  const iterated = [];
  for await (const email of client.iterateEmails({ from: sender, limit: 2 })) iterated.push(email.messageId);
  assert.deepEqual(iterated, seen);
});

test("a scheduled send takes a Date and is queued", async () => {
  const result = await client.send({
    from: sender,
    to: ["later@example.com"],
    subject: "Later",
    text: "See you tomorrow",
    scheduledAt: new Date(Date.now() + 24 * 3600 * 1000),
  });
  assert.equal(result.status, "queued");
});

test("a scheduledAt in the past is a ValidationError naming scheduledAt", async () => {
  await assert.rejects(
    client.send({ from: sender, to: ["x@example.com"], subject: "Past", text: "x", scheduledAt: Date.now() - 60_000 }),
    (error) => {
      assert.ok(error instanceof ValidationError, `${error}`);
      assert.equal(error.field, "scheduledAt");
      return true;
    },
  );
});

test("a send without html or text is a ValidationError", async () => {
  await assert.rejects(client.send({ from: sender, to: ["x@example.com"], subject: "Empty" }), (error) => {
    assert.ok(error instanceof ValidationError, `${error}`);
    assert.ok([400, 422].includes(error.status));
    return true;
  });
});

test("a CR/LF in the subject is refused before anything is queued", async () => {
  const before = await client.listEmails({ from: sender, limit: 1 });
  await assert.rejects(
    client.send({ from: sender, to: ["x@example.com"], subject: "Hi\r\nBcc: victim@example.com", text: "x" }),
    (error) => {
      assert.ok(error instanceof ValidationError, `${error}`);
      assert.equal(error.status, 422);
      return true;
    },
  );
  const after = await client.listEmails({ from: sender, limit: 1 });
  assert.deepEqual(after.data[0]?._id, before.data[0]?._id);
});

test("the same idempotencyKey sends once and answers the same", async () => {
  const idempotencyKey = unique("idem-");
  const to = [`${unique("once-")}@example.com`];
  const message = { from: sender, to, subject: "Once", text: "only once", idempotencyKey };
  const first = await client.send(message);
  const second = await client.send(message);
  assert.deepEqual(second, first);
  const page = await client.listEmails({ from: sender, limit: 50 });
  assert.equal(page.data.filter((email) => email.messageId === first.messageId).length, 1);
});

test("a bounced recipient is suppressed, listed, refused, then lifted", async () => {
  // example.com has no MX in the test DNS: the worker bounces the message and suppresses it.
  const gone = `${unique("gone-")}@example.com`;
  const sent = await client.send({ from: sender, to: [gone], subject: "Bounce", text: "x" });
  const deadline = Date.now() + 20_000;
  let suppression;
  while (!suppression && Date.now() < deadline) {
    suppression = (await client.listSuppressions()).data.find((s) => s.address === gone);
    if (!suppression) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.ok(suppression, `${gone} was not suppressed within 20 s`);
  assert.equal(suppression.reason, "bounce");
  const detail = await client.getEmail(sent.messageId);
  assert.deepEqual(detail.recipients.map((r) => r.status), ["bounced"]);

  await assert.rejects(client.send({ from: sender, to: [gone], subject: "Again", text: "x" }), (error) => {
    assert.ok(error instanceof MailmarkError);
    assert.ok(error.message.includes(gone), error.message);
    return true;
  });
  assert.deepEqual(await client.deleteSuppression(gone), { deleted: true });
  assert.ok(!(await client.listSuppressions()).data.some((s) => s.address === gone));
  await assert.rejects(client.deleteSuppression(gone), NotFoundError);
});

test("attachments from bytes and paths are sent, and tags filter listEmails", async () => {
  const dir = await mkdtemp(join(tmpdir(), "mailmark-sdk-"));
  const path = join(dir, "report-node.csv");
  await writeFile(path, "a,b\n1,2\n");
  const tag = unique("node-");
  // Longer than one chunk of the encoder, every byte value.
  const logo = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 256));
  const result = await client.send({
    from: sender,
    to: ["ann@example.com"],
    subject: "Node attachments",
    html: '<p>Logo: <img src="cid:logo"></p>',
    scheduledAt: new Date(Date.now() + 3600 * 1000),
    attachments: [{ path }, { filename: "logo.png", content: new Uint8Array(logo), contentId: "logo" }],
    tags: [tag, "sdk"],
  });
  assert.equal(result.status, "queued");

  const page = await client.listEmails({ tag });
  assert.deepEqual(
    page.data.map((email) => [email.messageId, email.tags]),
    [[result.messageId, [tag, "sdk"].sort()]],
  );
  assert.deepEqual((await client.getEmail(result.messageId)).tags, [tag, "sdk"].sort());

  await assert.rejects(
    client.send({
      from: sender,
      to: ["x@example.com"],
      subject: "x",
      text: "x",
      attachments: [{ filename: "a\r\nb.txt", content: new Uint8Array([1]) }],
    }),
    (error) => {
      assert.ok(error instanceof ValidationError, `${error}`);
      assert.equal(error.field, "attachments[0].filename");
      return true;
    },
  );
  await assert.rejects(
    client.send({ from: sender, to: ["x@example.com"], subject: "x", text: "x", attachments: [{ filename: "a" }] }),
    TypeError,
  );
});
