import { Badge } from "../../../components/Card";

/** "Verified" once every required record was found; until then the domain waits for its DNS. */
export function DomainStatusBadge({ verified }: { verified: boolean }) {
  return verified ? <Badge tone="success">Verified</Badge> : <Badge tone="warning">Waiting for DNS</Badge>;
}
