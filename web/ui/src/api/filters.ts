/** A mailbox's filters (/api/mailboxes/{address}/filters): Sieve scripts, shown as simple rules when made from them. */
import { api, seg } from "./client";

export type RuleField = "from" | "to" | "subject" | "header";
export type RuleOperator = "contains" | "is" | "matches";
export type RuleAction = "move" | "read" | "flag" | "forward" | "discard";

export type FilterRule = {
  field: RuleField;
  /** The header field's name when `field` is "header". */
  header: string;
  operator: RuleOperator;
  value: string;
  action: RuleAction;
  /** The folder to move to, or the address to forward to. */
  target: string;
};

export type Filters = {
  name: string;
  script: string;
  /** The rules the script was made from; null when it was written or edited as Sieve. */
  rules: FilterRule[] | null;
  lastError: string | null;
  lastErrorAt: string | null;
  updatedAt: string | null;
};

export type ScriptCheck = { valid: boolean; line: number | null; message: string | null };

export const filtersApi = {
  get: (address: string) => api.get<Filters>(`/api/mailboxes/${seg(address)}/filters`),
  saveRules: (address: string, rules: FilterRule[]) =>
    api.put<Filters>(`/api/mailboxes/${seg(address)}/filters`, { rules }),
  saveScript: (address: string, script: string) =>
    api.put<Filters>(`/api/mailboxes/${seg(address)}/filters`, { script }),
  check: (address: string, script: string) =>
    api.post<ScriptCheck>(`/api/mailboxes/${seg(address)}/filters/check`, { script }),
};
