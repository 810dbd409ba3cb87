/** Sign-in, sessions, setup, password reset, invitations and the signed-in user (/api). */
import { api, seg, type Id } from "./client";

export type Role = "owner" | "admin" | "member";

export type Me = {
  id: Id;
  email: string;
  name: string;
  role: Role;
  accountName: string;
  accountId: string;
  totpEnabled: boolean;
  csrfToken: string;
};

export type OidcProvider = { id: string; name: string };

export type SessionInfo = {
  signedIn: boolean;
  setupRequired: boolean;
  signupOpen: boolean;
  oidcProviders: OidcProvider[];
  csrfToken: string;
  user: Me | null;
};

export type SignInResult = Me | { totpRequired: true };

export type Invitation = {
  email: string;
  accountName: string;
  role: Role;
  invitedBy: string;
  expiresAt: string;
};

export type DeviceSession = {
  id: Id;
  current: boolean;
  createdAt: string;
  lastSeenAt: string;
  ip: string | null;
  userAgent: string | null;
};

export type TotpSetup = { secret: string; otpauthUri: string; qrSvg: string };

export const authApi = {
  session: () => api.get<SessionInfo>("/api/session", { quietUnauthenticated: true }),
  setup: (body: { token: string; accountName: string; name: string; email: string; password: string }) =>
    api.post<Me>("/api/setup", body),
  signUp: (body: { accountName: string; name: string; email: string; password: string }) =>
    api.post<Me>("/api/auth/sign-up", body),
  signIn: (body: { email: string; password: string }) =>
    api.post<SignInResult>("/api/auth/sign-in", body, { quietUnauthenticated: true }),
  totp: (code: string) => api.post<Me>("/api/auth/totp", { code }, { quietUnauthenticated: true }),
  signOut: () => api.post<void>("/api/auth/sign-out"),
  requestPasswordReset: (email: string) => api.post<void>("/api/auth/password-reset", { email }),
  confirmPasswordReset: (token: string, password: string) =>
    api.post<void>("/api/auth/password-reset/confirm", { token, password }),
  invitation: (token: string) => api.get<Invitation>(`/api/invitations/${seg(token)}`),
  acceptInvitation: (token: string, body: { name: string; password: string }) =>
    api.post<Me>(`/api/invitations/${seg(token)}/accept`, body),
  oidcStartUrl: (provider: string) => `/api/auth/oidc/${seg(provider)}/start`,

  me: () => api.get<Me>("/api/me"),
  updateMe: (body: { name: string }) => api.patch<Me>("/api/me", body),
  changePassword: (body: { currentPassword: string; newPassword: string }) =>
    api.post<void>("/api/me/password", body),
  sessions: () => api.get<DeviceSession[]>("/api/me/sessions"),
  revokeSession: (id: Id) => api.delete(`/api/me/sessions/${seg(String(id))}`),
  totpSetup: () => api.post<TotpSetup>("/api/me/totp/setup"),
  totpEnable: (code: string) => api.post<{ recoveryCodes: string[] }>("/api/me/totp/enable", { code }),
  totpDisable: (password: string) => api.post<void>("/api/me/totp/disable", { password }),
};

export function isTotpChallenge(result: SignInResult): result is { totpRequired: true } {
  return "totpRequired" in result && result.totpRequired === true;
}
