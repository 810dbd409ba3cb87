import assert from "node:assert/strict";
import { test } from "node:test";

import { ConflictError, NotFoundError, ValidationError } from "../dist/index.js";
import { client, unique } from "./live.js";

async function finished(id) {
  for (let i = 0; i < 500; i += 1) {
    const job = await client.getContactImport(id);
    if (job.status !== "running") return job;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`import ${id} did not finish`);
}

test("contacts: create, filter, update, delete", async () => {
  const email = `${unique("node-")}@example.com`;
  const contact = await client.createContact({ email, firstName: "Node", tags: ["sdk"] });
  assert.equal(contact.email, email);
  assert.deepEqual(contact.tags, ["sdk"]);
  assert.equal(contact.suppressed, false);
  await assert.rejects(client.createContact({ email }), ConflictError);
  await assert.rejects(client.createContact({ email: "nope" }), ValidationError);

  const updated = await client.updateContact(contact._id, { company: "Acme", status: "unsubscribed" });
  assert.equal(updated.company, "Acme");
  assert.equal(updated.status, "unsubscribed");
  const page = await client.listContacts({ tag: "sdk", status: "unsubscribed", suppressed: false });
  assert.ok(page.data.some((listed) => listed._id === contact._id));

  assert.deepEqual(await client.deleteContact(contact._id), { deleted: true });
  await assert.rejects(client.getContact(contact._id), NotFoundError);
});

test("contacts: preview, import into a list, export, segments", async () => {
  const tag = unique("t").toLowerCase();
  const csv = `Mail,Name,Tags\nimp-${tag}@example.com,Imp,${tag}\nbroken,X,\n`;
  const preview = await client.previewContactImport(csv, { mapping: { Mail: "email", Name: "first_name" } });
  assert.deepEqual(preview.columns, ["Mail", "Name", "Tags"]);
  assert.equal(preview.rows[0].contact.firstName, "Imp");
  assert.ok(preview.rows[1].error);

  const list = await client.createList({ name: unique("Node list ") });
  const started = await client.importContacts(csv, {
    mapping: { Mail: "email", Name: "first_name" },
    onDuplicate: "skip",
    listId: list._id,
  });
  const job = await finished(started._id);
  assert.equal(job.status, "done");
  assert.equal(job.created, 1);
  assert.deepEqual(job.errors.map((e) => e.row), [3]);

  const members = await client.listContacts({ listId: list._id });
  assert.deepEqual(members.data.map((c) => c.email), [`imp-${tag}@example.com`]);
  const exported = await client.exportContacts({ tag });
  assert.equal(exported.split("\r\n")[1].split(",")[0], `imp-${tag}@example.com`);

  const segment = await client.createList({ name: unique("Seg "), filter: { tag } });
  assert.equal(segment.size, 1);
  assert.deepEqual(segment.filter, { tag });
  const renamed = await client.updateList(list._id, { name: unique("Renamed ") });
  assert.equal(renamed.size, 1);
  const contact = members.data[0];
  assert.deepEqual(await client.removeListMember(list._id, contact._id), { deleted: true });
  const again = await client.addListMembers(list._id, { contactIds: [contact._id] });
  assert.equal(again.size, 1);
  assert.ok((await client.listLists()).some((found) => found._id === segment._id));
  assert.equal((await client.getList(segment._id)).name, segment.name);
  assert.deepEqual(await client.deleteList(list._id), { deleted: true });
  await assert.rejects(client.getList(list._id), NotFoundError);
});
