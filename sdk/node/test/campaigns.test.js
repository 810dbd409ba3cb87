import assert from "node:assert/strict";
import { test } from "node:test";

import { ConflictError, NotFoundError, ValidationError } from "../dist/index.js";
import { client, sender, unique } from "./live.js";

const stages = [
  { subject: "Hi {{firstName|there}}", html: "<p>Hello {{firstName|there}}</p>" },
  { delayDays: 2, html: "<p>Following up</p>" },
];

test("campaigns: create, preview, launch, pause, resume, stats, recipients, cancel", async () => {
  const email = `${unique("camp-")}@example.com`;
  const contact = await client.createContact({ email, firstName: "Nia" });
  const audience = await client.createList({ name: unique("Audience ") });
  await client.addListMembers(audience._id, { emails: [email] });
  await assert.rejects(
    client.createCampaign({ name: "x", from: sender, stages: [{ html: "<p>x</p>" }] }),
    (error) => error instanceof ValidationError && error.field === "stages[0].subject",
  );
  const campaign = await client.createCampaign({
    name: unique("Intro "),
    from: sender,
    audience: { listIds: [audience._id] },
    stages,
    schedule: { timezone: "Europe/Paris", days: [1, 2, 3, 4, 5, 6, 7] },
  });
  assert.equal(campaign.status, "draft");
  assert.equal(campaign.from, sender);
  const preview = await client.previewCampaign(campaign._id, { contactId: contact._id, stage: 2 });
  assert.equal(preview.subject, "Re: Hi Nia");
  const renamed = await client.updateCampaign(campaign._id, { name: `${campaign.name}!` });
  assert.equal(renamed.name, `${campaign.name}!`);

  assert.equal((await client.launchCampaign(campaign._id)).status, "running");
  await assert.rejects(client.updateCampaign(campaign._id, { name: "no" }), ConflictError);
  assert.equal((await client.pauseCampaign(campaign._id)).pauseReason, "Paused by the user.");
  assert.equal((await client.resumeCampaign(campaign._id)).status, "running");
  const recipients = await client.listCampaignRecipients(campaign._id);
  assert.deepEqual(
    recipients.data.map((r) => r.email),
    [email],
  );
  const stats = await client.getCampaignStats(campaign._id);
  assert.equal(stats.recipients, 1);
  assert.equal(stats.stages.length, 2);
  const listed = await client.listCampaigns();
  assert.ok(listed.data.some((c) => c._id === campaign._id));
  assert.equal((await client.cancelCampaign(campaign._id)).status, "canceled");
  await assert.rejects(client.getCampaign("999999999"), NotFoundError);
});
