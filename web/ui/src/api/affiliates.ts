/** The affiliate program (/api/affiliates) and the operator's views (/api/operator). */
import type { Account } from "./account";
import { api } from "./client";

export type ApplicationStatus = "pending" | "approved" | "rejected";

export type Application = {
  id: number;
  status: ApplicationStatus;
  website: string;
  pitch: string;
  appliedAt: string;
  reviewedAt: string | null;
};

export type Statement = {
  month: string;
  openingCents: number;
  earnedCents: number;
  balanceCents: number;
  /** 0: below the $50 minimum, rolled over. */
  payoutCents: number;
  payableOn: string;
};

export type AffiliateDashboard = {
  link: string;
  clicks: number;
  signups: number;
  payingCustomers: number;
  earnedCents: number;
  pendingCents: number;
  paidCents: number;
  payoutMethod: "paypal" | "bank" | null;
  paypalEmail: string | null;
  hasBankDetails: boolean;
  statements: Statement[];
};

export type AffiliateState = { application: Application | null; dashboard: AffiliateDashboard | null };

export type Review = { application: Application; code: string; account: string; email: string };

export type PayoutLine = {
  code: string;
  account: string;
  email: string;
  month: string;
  payableOn: string;
  amountCents: number;
  method: string | null;
  paypalEmail: string | null;
  hasBankDetails: boolean;
};

export type PayoutMethodIn =
  | { method: "paypal"; paypalEmail: string }
  | { method: "bank"; bankDetails: string };

export const affiliateApi = {
  get: () => api.get<AffiliateState>("/api/affiliates"),
  apply: (website: string, pitch: string) => api.post<AffiliateState>("/api/affiliates/application", { website, pitch }),
  setPayoutMethod: (method: PayoutMethodIn) => api.put<AffiliateState>("/api/affiliates/payout-method", method),
  applications: () => api.get<Review[]>("/api/affiliates/applications"),
  review: (id: number, decision: "approve" | "reject") =>
    api.post<Application>(`/api/affiliates/applications/${id}/${decision}`),
  payouts: (month: string) => api.get<PayoutLine[]>(`/api/affiliates/payouts?month=${encodeURIComponent(month)}`),
  payoutsCsvUrl: (month: string) => `/api/affiliates/payouts.csv?month=${encodeURIComponent(month)}`,
};

export const operatorApi = {
  get: () => api.get<{ operator: boolean; affiliateProgram: boolean }>("/api/operator"),
  accounts: () => api.get<Account[]>("/api/operator/accounts"),
};

/** 150000 → "$1,500.00", from integer cents. */
export function formatCents(cents: number): string {
  const sign = cents < 0 ? "-" : "";
  const whole = Math.floor(Math.abs(cents) / 100);
  const part = String(Math.abs(cents) % 100).padStart(2, "0");
  return `${sign}$${whole.toLocaleString("en-US")}.${part}`;
}
