/** A domain's relay host (/api/domains/{name}/relay; owner and admin only). */
import { api, seg } from "./client";

export type RelayChoice = "default" | "relay" | "direct";
export type RelayTls = "starttls" | "implicit";

/** GET /api/domains/{name}/relay. The password is write-only: only whether one is set. */
export type DomainRelay = {
  domain: string;
  choice: RelayChoice;
  host: string | null;
  port: number | null;
  tls: RelayTls | null;
  username: string | null;
  passwordSet: boolean;
  /** "host:port" of the server's own relay, or null: without one, "default" means direct. */
  installationRelay: string | null;
};

/** PUT /api/domains/{name}/relay. An empty password keeps the saved one (same host and username). */
export type RelayChange =
  | { choice: "default" | "direct" }
  | {
      choice: "relay";
      host: string;
      port: number | null;
      tls: RelayTls;
      username: string;
      password: string;
    };

export const relayApi = {
  get: (name: string) => api.get<DomainRelay>(`/api/domains/${seg(name)}/relay`),
  set: (name: string, change: RelayChange) => api.put<DomainRelay>(`/api/domains/${seg(name)}/relay`, change),
};
