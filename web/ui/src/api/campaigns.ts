/** Campaigns of the account (/api/campaigns): the same service and answers as /v1/campaigns. */
import { api, seg } from "./client";

/** As the server says it; "scheduled" is a running campaign whose start is still ahead. */
export type CampaignStatus = "draft" | "running" | "paused" | "completed" | "canceled";

export type StageIn = {
  subject: string;
  html: string;
  /** Days after the previous stage, if no reply (0 for stage 1). */
  delayDays: number;
  /** A follow-up as a new email instead of a reply in the thread. */
  newThread: boolean;
  /** A/B alternatives to `subject`. */
  subjectVariants: string[];
  trackOpens: boolean;
  trackClicks: boolean;
};

export type Schedule = {
  timezone: string;
  /** Wall-clock time in `timezone` (YYYY-MM-DDTHH:MM), or null: at launch. */
  startAt: string | null;
  /** ISO weekdays, 1 = Monday. */
  days: number[];
  /** [first hour, hour it stops] in `timezone`. */
  hours: [number, number];
  /** Per mailbox per day; null: no cap. */
  dailyCap: number | null;
  spacingSeconds: number;
};

export type Campaign = {
  _id: string;
  name: string;
  status: CampaignStatus;
  from: string | null;
  senderGroupId: string | null;
  audience: { listIds: string[]; senderGroupRecipients: boolean };
  stages: StageIn[];
  schedule: Schedule;
  pauseReason: string;
  batchId: string;
  createdAt: string;
  updatedAt: string;
  launchedAt: string | null;
  finishedAt: string | null;
};

export type Counts = {
  sent: number;
  delivered: number;
  bounced: number;
  complained: number;
  replied: number;
  opened: number;
  clicked: number;
  unsubscribed: number;
  /** Opened or clicked by a person (privacy proxies and link scanners left out). */
  humanOpened: number;
  humanClicked: number;
};

export type CampaignSummary = { campaign: Campaign; recipients: number; totals: Counts };

export type CampaignChange = {
  name?: string;
  from?: string | null;
  senderGroupId?: string | null;
  audience?: { listIds: string[] };
  stages?: StageIn[];
  schedule?: Schedule;
};

export type Choices = {
  mailboxes: { address: string; domain: string; displayName: string }[];
  senderGroups: { id: string; name: string; domain: string }[];
  lists: { id: string; name: string; size: number; segment: boolean }[];
};

export type Stats = {
  campaignId: string;
  status: CampaignStatus;
  pauseReason: string;
  recipients: number;
  states: Record<string, number>;
  totals: Counts;
  stages: { stage: number; counts: Counts; variants: { variant: number; subject: string; counts: Counts }[] }[];
};

export type ActivityPoint = { start: string; sent: number; opened: number; clicked: number; replied: number };
export type Activity = { bucket: "hour" | "day"; timezone: string; points: ActivityPoint[] };

export type Recipient = {
  _id: string;
  email: string;
  contactId: string | null;
  state: string;
  stagesSent: number;
  nextStage: number;
  nextSendAt: string | null;
  stopReason: string;
  autoReplies: number;
  updatedAt: string | null;
};

export type TimelineEntry = { at: string; kind: string; stage: number | null; detail: string; machine: boolean };

export type Preview = { stage: number; email: string; subject: string; html: string; text: string; headers: Record<string, string> };

const base = (id: string) => `/api/campaigns/${seg(id)}`;

export const campaignsApi = {
  list: (cursor?: string | null) =>
    api.get<{ data: CampaignSummary[]; nextCursor: string | null }>(
      `/api/campaigns${cursor ? `?cursor=${seg(cursor)}` : ""}`,
    ),
  choices: () => api.get<Choices>("/api/campaigns/choices"),
  create: (domain: string, change: CampaignChange) => api.post<Campaign>("/api/campaigns", { domain, ...change }),
  get: (id: string) => api.get<Campaign>(base(id)),
  update: (id: string, change: CampaignChange) => api.patch<Campaign>(base(id), change),
  launch: (id: string) => api.post<Campaign>(`${base(id)}/launch`),
  pause: (id: string) => api.post<Campaign>(`${base(id)}/pause`),
  resume: (id: string) => api.post<Campaign>(`${base(id)}/resume`),
  cancel: (id: string) => api.post<Campaign>(`${base(id)}/cancel`),
  stats: (id: string) => api.get<Stats>(`${base(id)}/stats`),
  activity: (id: string, bucket?: "hour" | "day") =>
    api.get<Activity>(`${base(id)}/activity${bucket ? `?bucket=${bucket}` : ""}`),
  recipients: (id: string, state: string, cursor?: string | null) => {
    const query = new URLSearchParams();
    if (state) query.set("state", state);
    if (cursor) query.set("cursor", cursor);
    const tail = query.toString();
    return api.get<{ data: Recipient[]; nextCursor: string | null }>(`${base(id)}/recipients${tail ? `?${tail}` : ""}`);
  },
  recipient: (id: string, recipientId: string) =>
    api.get<{ recipient: Recipient; entries: TimelineEntry[] }>(`${base(id)}/recipients/${seg(recipientId)}`),
  exportUrl: (id: string) => `${base(id)}/recipients.csv`,
  contacts: (id: string) => api.get<{ id: string; email: string; name: string }[]>(`${base(id)}/contacts`),
  preview: (id: string, stage: number, contactId: string | null) =>
    api.post<Preview>(`${base(id)}/preview`, { stage, contactId }),
  testSend: (id: string, to: string, stage: number, contactId: string | null) =>
    api.post<{ messageId: string; emailId: string }>(`${base(id)}/test-send`, { to, stage, contactId }),
};
