/** A mailbox's vacation responder (/api/mailboxes/{address}/vacation). */
import { api, seg } from "./client";

export type Vacation = {
  enabled: boolean;
  /** On and within its dates: answering mail now. */
  active: boolean;
  subject: string;
  body: string;
  bodyFormat: "html" | "text";
  days: number;
  timeZone: string;
  /** Wall-clock times in `timeZone`, YYYY-MM-DDTHH:MM; `endsAt` is the first moment it is off. */
  startsAt: string | null;
  endsAt: string | null;
};

export type VacationChange = {
  enabled: boolean;
  subject: string;
  body: string;
  days: number;
  timeZone: string;
  /** A date (from its midnight) or a date and time, in `timeZone`. */
  startsAt: string | null;
  /** A date (that whole day is included) or a date and time, in `timeZone`. */
  endsAt: string | null;
};

export const vacationApi = {
  get: (address: string) => api.get<Vacation>(`/api/mailboxes/${seg(address)}/vacation`),
  set: (address: string, change: VacationChange) =>
    api.put<Vacation>(`/api/mailboxes/${seg(address)}/vacation`, change),
};
