/** The plan, its period and usage, checkout, the portal and plan changes (/api/billing). */
import type { Account, Plan } from "./account";
import { api } from "./client";

export type PaidPlan = "starter" | "pro" | "business";

export type PlanOffer = { plan: Plan; priceCents: number };

export type Billing = {
  /** false: this server does not sell plans; its operator sets them. */
  enabled: boolean;
  account: Account;
  currentPeriodEnd: string | null;
  cancelAtPeriodEnd: boolean;
  /** A downgrade that takes effect at currentPeriodEnd. */
  scheduledPlan: string | null;
  plans: PlanOffer[];
};

export const billingApi = {
  get: () => api.get<Billing>("/api/billing"),
  checkout: (plan: PaidPlan) => api.post<{ url: string }>("/api/billing/checkout", { plan }),
  portal: () => api.post<{ url: string }>("/api/billing/portal"),
  changePlan: (plan: PaidPlan) => api.post<Billing>("/api/billing/plan", { plan }),
  cancel: () => api.post<Billing>("/api/billing/cancel"),
  resume: () => api.post<Billing>("/api/billing/resume"),
};
