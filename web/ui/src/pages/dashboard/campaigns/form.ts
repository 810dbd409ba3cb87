/** The editor's form and the campaign the API takes, one to the other. */
import type { Campaign, CampaignChange, Choices } from "../../../api/campaigns";

export type StageForm = { subject: string; variants: string[]; html: string; delayDays: string; newThread: boolean };

export type CampaignForm = {
  name: string;
  /** "mailbox:<address>" or "group:<id>". */
  sender: string;
  listIds: string[];
  stages: StageForm[];
  startMode: "launch" | "at";
  startAt: string;
  timezone: string;
  days: number[];
  fromHour: number;
  toHour: number;
  dailyCap: string;
  spacingSeconds: string;
  trackOpens: boolean;
  trackClicks: boolean;
};

export const NEW_STAGE: StageForm = { subject: "", variants: [], html: "", delayDays: "3", newThread: false };

export function browserZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

export function emptyForm(): CampaignForm {
  return {
    name: "",
    sender: "",
    listIds: [],
    stages: [{ ...NEW_STAGE, delayDays: "0" }],
    startMode: "launch",
    startAt: "",
    timezone: browserZone(),
    days: [1, 2, 3, 4, 5],
    fromHour: 9,
    toHour: 17,
    dailyCap: "50",
    spacingSeconds: "60",
    trackOpens: true,
    trackClicks: true,
  };
}

export function formOf(campaign: Campaign): CampaignForm {
  const schedule = campaign.schedule;
  return {
    name: campaign.name,
    sender: campaign.from ? `mailbox:${campaign.from}` : campaign.senderGroupId ? `group:${campaign.senderGroupId}` : "",
    listIds: campaign.audience.listIds,
    stages: campaign.stages.map((stage) => ({
      subject: stage.subject,
      variants: stage.subjectVariants,
      html: stage.html,
      delayDays: String(stage.delayDays),
      newThread: stage.newThread,
    })),
    startMode: schedule.startAt ? "at" : "launch",
    startAt: schedule.startAt ? schedule.startAt.slice(0, 16) : "",
    timezone: schedule.timezone,
    days: schedule.days,
    fromHour: schedule.hours[0],
    toHour: schedule.hours[1],
    dailyCap: schedule.dailyCap === null ? "" : String(schedule.dailyCap),
    spacingSeconds: String(schedule.spacingSeconds),
    trackOpens: campaign.stages.every((stage) => stage.trackOpens),
    trackClicks: campaign.stages.every((stage) => stage.trackClicks),
  };
}

/** A number as typed, or the text itself (the server says what is wrong with it). */
function numeric(text: string): number | string {
  const trimmed = text.trim();
  return /^\d+$/.test(trimmed) ? Number(trimmed) : trimmed;
}

export function changeOf(form: CampaignForm): CampaignChange {
  const [kind, ...rest] = form.sender.split(":");
  const value = rest.join(":");
  return {
    name: form.name,
    from: kind === "mailbox" ? value : null,
    senderGroupId: kind === "group" ? value : null,
    audience: { listIds: form.listIds },
    stages: form.stages.map((stage, index) => ({
      subject: stage.subject,
      subjectVariants: stage.variants.filter((variant) => variant.trim() !== ""),
      html: stage.html,
      delayDays: index === 0 ? 0 : (numeric(stage.delayDays) as number),
      newThread: index === 0 ? false : stage.newThread,
      trackOpens: form.trackOpens,
      trackClicks: form.trackClicks,
    })),
    schedule: {
      timezone: form.timezone,
      startAt: form.startMode === "at" && form.startAt ? form.startAt : null,
      days: [...form.days].sort((a, b) => a - b),
      hours: [form.fromHour, form.toHour],
      dailyCap: form.dailyCap.trim() === "" ? null : (numeric(form.dailyCap) as number),
      spacingSeconds: form.spacingSeconds.trim() === "" ? 0 : (numeric(form.spacingSeconds) as number),
    },
  };
}

/** The domain a campaign from this sender is made on. */
export function senderDomain(sender: string, choices: Choices): string | null {
  const [kind, ...rest] = sender.split(":");
  const value = rest.join(":");
  if (kind === "mailbox") return choices.mailboxes.find((mailbox) => mailbox.address === value)?.domain ?? null;
  if (kind === "group") return choices.senderGroups.find((group) => group.id === value)?.domain ?? null;
  return null;
}

/** The form fields an API error's `field` ("stages[1].delayDays") belongs to. */
export function errorFor(field: string | null | undefined, name: string): boolean {
  if (!field) return false;
  if (field === "from" || field === "senderGroupId") return name === "sender";
  return field === name || field.startsWith(`${name}.`) || field.startsWith(`${name}[`);
}

// The API fields the editor shows an error at; any other error is shown above the Save button.
const SHOWN_AT_A_FIELD =
  /^(name|from|senderGroupId|audience(\..+)?|stages|stages\[\d+\]\.(delayDays|subject|subjectVariants|html)|schedule\.(startAt|timezone|days|hours|dailyCap|spacingSeconds))$/;

/** Whether the editor shows an API error with this `field` beside a control. */
export function shownAtField(field: string | null | undefined): boolean {
  return Boolean(field && SHOWN_AT_A_FIELD.test(field));
}
