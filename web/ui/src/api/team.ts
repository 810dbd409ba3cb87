/** Members, roles, mailbox assignments and invitations (/api/team; owner and admin only). */
import type { Role } from "./auth";
import { api, seg, type Id } from "./client";

export type Member = {
  id: Id;
  email: string;
  name: string;
  role: Role;
  mailboxes: string[];
  createdAt: string;
};

export type PendingInvitation = {
  id: Id;
  email: string;
  role: Role;
  mailboxes: string[];
  expiresAt: string;
  invitedBy: string;
  acceptUrl: string;
};

export type Team = { members: Member[]; invitations: PendingInvitation[] };

export const teamApi = {
  get: () => api.get<Team>("/api/team"),
  invite: (body: { email: string; role: Role; mailboxes: string[] }) =>
    api.post<PendingInvitation>("/api/team/invitations", body),
  cancelInvitation: (id: Id) => api.delete(`/api/team/invitations/${seg(String(id))}`),
  updateMember: (id: Id, body: { role?: Role; mailboxes?: string[] }) =>
    api.patch<Member>(`/api/team/members/${seg(String(id))}`, body),
  removeMember: (id: Id) => api.delete(`/api/team/members/${seg(String(id))}`),
};
