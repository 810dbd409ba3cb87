import { describe, expect, it } from "vitest";
import type { Campaign, Choices } from "../../../api/campaigns";
import { changeOf, emptyForm, errorFor, formOf, senderDomain, shownAtField } from "./form";

const campaign: Campaign = {
  _id: "7",
  name: "December outreach",
  status: "draft",
  from: "sales@acme.test",
  senderGroupId: null,
  audience: { listIds: ["5"], senderGroupRecipients: false },
  stages: [
    { subject: "Hi {{firstName|there}}", html: "<p>a</p>", delayDays: 0, newThread: false, subjectVariants: ["B"], trackOpens: true, trackClicks: false },
    { subject: "", html: "<p>b</p>", delayDays: 3, newThread: false, subjectVariants: [], trackOpens: true, trackClicks: false },
  ],
  schedule: { timezone: "Europe/Paris", startAt: "2026-12-08T09:00", days: [1, 2, 3, 4, 5], hours: [9, 17], dailyCap: 40, spacingSeconds: 90 },
  pauseReason: "",
  batchId: "campaign_7",
  createdAt: "",
  updatedAt: "",
  launchedAt: null,
  finishedAt: null,
};

describe("the editor's form", () => {
  it("gives back the campaign it was filled from", () => {
    const change = changeOf(formOf(campaign));
    expect(change).toEqual({
      name: "December outreach",
      from: "sales@acme.test",
      senderGroupId: null,
      audience: { listIds: ["5"] },
      stages: campaign.stages,
      schedule: campaign.schedule,
    });
  });

  it("sends a sender group, no start time, no cap and a typo as typed", () => {
    const form = { ...emptyForm(), sender: "group:3", dailyCap: " ", spacingSeconds: "", timezone: "UTC" };
    form.stages = [{ ...form.stages[0]!, subject: "S", variants: ["", "  ", "V"] }, { subject: "", variants: [], html: "x", delayDays: "soon", newThread: false }];
    const change = changeOf(form);
    expect(change.from).toBeNull();
    expect(change.senderGroupId).toBe("3");
    expect(change.schedule).toMatchObject({ startAt: null, dailyCap: null, spacingSeconds: 0, days: [1, 2, 3, 4, 5] });
    expect(change.stages![0]!.subjectVariants).toEqual(["V"]);
    // The server words the mistake: the text goes as it was typed.
    expect(change.stages![1]!.delayDays).toBe("soon");
  });

  it("finds the sender's domain", () => {
    const choices: Choices = {
      mailboxes: [{ address: "sales@acme.test", domain: "acme.test", displayName: "" }],
      senderGroups: [{ id: "3", name: "All", domain: "other.test" }],
      lists: [],
    };
    expect(senderDomain("mailbox:sales@acme.test", choices)).toBe("acme.test");
    expect(senderDomain("group:3", choices)).toBe("other.test");
    expect(senderDomain("", choices)).toBeNull();
  });

  it("places the server's errors at their fields", () => {
    expect(errorFor("from", "sender")).toBe(true);
    expect(errorFor("stages[1].delayDays", "stages[1].delayDays")).toBe(true);
    expect(errorFor("audience.listIds", "audience")).toBe(true);
    expect(errorFor("schedule.days", "schedule.hours")).toBe(false);
    expect(shownAtField("stages[0].subject")).toBe(true);
    expect(shownAtField("schedule.hours")).toBe(true);
    expect(shownAtField("stages[0].trackOpens")).toBe(false);
    expect(shownAtField(null)).toBe(false);
  });
});
