/** A mailbox's forwarding (/api/mailboxes/{address}/forwarding). */
import { api, seg } from "./client";

export type Forwarding = {
  /** Empty: the mailbox does not forward. */
  addresses: string[];
  keepCopy: boolean;
  maxAddresses: number;
};

export const forwardingApi = {
  get: (address: string) => api.get<Forwarding>(`/api/mailboxes/${seg(address)}/forwarding`),
  set: (address: string, addresses: string[], keepCopy: boolean) =>
    api.put<Forwarding>(`/api/mailboxes/${seg(address)}/forwarding`, { addresses, keepCopy }),
};
