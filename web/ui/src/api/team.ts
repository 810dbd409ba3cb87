/** Members, roles, mailbox assignments and invitations (/api/team; owner and admin only). */
import type { Role } from "./auth";
import { api, seg } from "./client";

export type Member = {
  id: string;
  email: string;
  name: string;
  role: Role;
  mailboxes: string[];
  createdAt: string;
};

export type PendingInvitation = {
  id: string;
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
  cancelInvitation: (id: string) => api.delete(`/api/team/invitations/${seg(id)}`),
  updateMember: (id: string, body: { role?: Role; mailboxes?: string[] }) =>
    api.patch<Member>(`/api/team/members/${seg(id)}`, body),
  removeMember: (id: string) => api.delete(`/api/team/members/${seg(id)}`),
};
