import assert from "node:assert/strict";
import { test } from "node:test";

import { ConflictError, NotFoundError, ValidationError } from "../dist/index.js";
import { client, domain, sender, unique } from "./live.js";

test("createMailbox, listMailboxes and deleteMailbox round-trip", async () => {
  const local = unique("node-");
  const created = await client.createMailbox({ address: local, displayName: "Node Team" });
  assert.equal(created.address, local);
  assert.equal(created.fullAddress, `${local}@${domain}`);
  assert.equal(created.displayName, "Node Team");
  assert.equal(typeof created._id, "string");

  const listed = await client.listMailboxes();
  const found = listed.find((mailbox) => mailbox.fullAddress === `${local}@${domain}`);
  assert.deepEqual(found, created);
  assert.ok(listed.some((mailbox) => mailbox.fullAddress === sender));

  assert.deepEqual(await client.deleteMailbox(local), { deleted: true });
  const after = await client.listMailboxes();
  assert.ok(!after.some((mailbox) => mailbox.address === local));
});

test("updateMailbox changes only the fields given", async () => {
  const local = unique("upd-");
  await client.createMailbox({ address: local, displayName: "Before" });
  const renamed = await client.updateMailbox(local, { displayName: "After" });
  assert.equal(renamed.displayName, "After");
  const signed = await client.updateMailbox(`${local}@${domain}`, { signature: "-- \nAfter" });
  assert.equal(signed.displayName, "After");
  await assert.rejects(client.updateMailbox(local, { password: "short" }), ValidationError);
  await assert.rejects(client.updateMailbox(unique("none-"), { displayName: "X" }), NotFoundError);
  await client.deleteMailbox(local);
});

test("deleteMailbox takes the full address too", async () => {
  const local = unique("full-");
  await client.createMailbox({ address: local });
  assert.deepEqual(await client.deleteMailbox(`${local}@${domain}`), { deleted: true });
  await assert.rejects(client.deleteMailbox(local), NotFoundError);
});

test("creating an existing mailbox is a ConflictError with status 409", async () => {
  const local = unique("dup-");
  await client.createMailbox({ address: local });
  try {
    await assert.rejects(client.createMailbox({ address: local }), (error) => {
      assert.ok(error instanceof ConflictError);
      assert.equal(error.status, 409);
      assert.equal(typeof error.code, "string");
      assert.ok(error.message.length > 0);
      return true;
    });
  } finally {
    await client.deleteMailbox(local);
  }
});

test("an invalid local part is a ValidationError naming the field", async () => {
  await assert.rejects(client.createMailbox({ address: "has space" }), (error) => {
    assert.ok(error instanceof ValidationError, `${error}`);
    assert.ok([400, 422].includes(error.status));
    assert.equal(typeof error.field, "string");
    return true;
  });
});

test("deleting a mailbox that does not exist is a NotFoundError", async () => {
  await assert.rejects(client.deleteMailbox(unique("ghost-")), (error) => {
    assert.ok(error instanceof NotFoundError);
    assert.equal(error.status, 404);
    return true;
  });
});
