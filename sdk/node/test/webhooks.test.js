import assert from "node:assert/strict";
import { test } from "node:test";

import { NotFoundError, ValidationError } from "../dist/index.js";
import { client } from "./live.js";

test("webhooks: create (secret shown once), list, refuse internal targets, delete", async () => {
  const url = "http://127.0.0.1:9/node-hooks";
  const created = await client.createWebhook({ url, events: ["email.delivered", "email.opened"] });
  assert.equal(typeof created.secret, "string");
  assert.ok(created.secret.length >= 16);
  assert.deepEqual([...created.events].sort(), ["email.delivered", "email.opened"]);

  const listed = (await client.listWebhooks()).find((webhook) => webhook.id === created.id);
  assert.ok(listed);
  assert.equal(listed.url, url);
  assert.equal(listed.secret, undefined);

  await assert.rejects(client.createWebhook({ url: "http://10.1.2.3/hooks" }), (error) => {
    assert.ok(error instanceof ValidationError, `${error}`);
    assert.equal(error.field, "url");
    return true;
  });

  assert.deepEqual(await client.deleteWebhook(created.id), { deleted: true });
  assert.ok(!(await client.listWebhooks()).some((webhook) => webhook.id === created.id));
  await assert.rejects(client.deleteWebhook(created.id), NotFoundError);
});
