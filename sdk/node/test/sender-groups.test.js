import assert from "node:assert/strict";
import { test } from "node:test";

import { NotFoundError } from "../dist/index.js";
import { client, sender, unique } from "./live.js";

test("sender groups: create, update, list and delete", async () => {
  const name = unique("Marketing ");
  const group = await client.createSenderGroup({
    name,
    mailboxes: "all",
    emails: ["user1@example.com", "user2@example.com"],
  });
  assert.equal(group.name, name);
  assert.equal(typeof group._id, "string");
  assert.deepEqual([...group.emails].sort(), ["user1@example.com", "user2@example.com"]);
  assert.ok(group.mailboxes.includes(sender));

  const added = await client.updateSenderGroup(group._id, { addEmails: ["new@example.com"] });
  assert.deepEqual([...added.emails].sort(), [
    "new@example.com",
    "user1@example.com",
    "user2@example.com",
  ]);
  const removed = await client.updateSenderGroup(group._id, {
    removeEmails: ["user1@example.com"],
    name: `${name} renamed`,
  });
  assert.equal(removed.name, `${name} renamed`);
  assert.deepEqual([...removed.emails].sort(), ["new@example.com", "user2@example.com"]);
  const replaced = await client.updateSenderGroup(group._id, {
    emails: ["only@example.com"],
    mailboxes: sender,
  });
  assert.deepEqual(replaced.emails, ["only@example.com"]);
  assert.deepEqual(replaced.mailboxes, [sender]);

  const groups = await client.listSenderGroups();
  assert.ok(groups.some((listed) => listed._id === group._id && listed.name === `${name} renamed`));

  assert.deepEqual(await client.deleteSenderGroup(group._id), { deleted: true });
  assert.ok(!(await client.listSenderGroups()).some((listed) => listed._id === group._id));
  await assert.rejects(client.updateSenderGroup(group._id, { name: "x" }), NotFoundError);
  await assert.rejects(client.deleteSenderGroup(group._id), NotFoundError);
});
