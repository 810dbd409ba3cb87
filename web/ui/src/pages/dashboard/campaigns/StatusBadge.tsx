import type { Campaign } from "../../../api/campaigns";
import { Badge } from "../../../components/Card";
import { displayStatus, zonedToUtc } from "./logic";

/** Draft, Scheduled, Running, Paused, Finished or Cancelled. */
export function StatusBadge({ campaign }: { campaign: Campaign }) {
  const start = campaign.schedule.startAt ? zonedToUtc(campaign.schedule.startAt, campaign.schedule.timezone) : null;
  const shown = displayStatus(campaign, Date.now(), start);
  return <Badge tone={shown.tone}>{shown.label}</Badge>;
}
