/** The account: plan, usage, trial and notices (/api/account). */
import { api } from "./client";

export type AccountStatus = "trial" | "active" | "paused";

export type Plan = {
  name: string;
  label: string;
  domains: number | null;
  mailboxes: number | null;
  emailsPerMonth: number | null;
};

export type Account = {
  name: string;
  status: AccountStatus;
  plan: Plan;
  trialEndsAt: string | null;
  trialDaysLeft: number | null;
  usage: { domains: number; mailboxes: number; emailsThisMonth: number };
  notices: string[];
  signup: "open" | "closed";
};

export const accountApi = {
  get: () => api.get<Account>("/api/account"),
  rename: (name: string) => api.patch<Account>("/api/account", { name }),
};
