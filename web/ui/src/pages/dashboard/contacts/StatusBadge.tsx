import type { ContactStatus } from "../../../api/contacts";
import { Badge, type BadgeTone } from "../../../components/Card";

const tones: Record<ContactStatus, BadgeTone> = {
  subscribed: "success",
  unsubscribed: "neutral",
  bounced: "warning",
  complained: "danger",
};

export function statusLabel(status: ContactStatus): string {
  return status.charAt(0).toUpperCase() + status.slice(1);
}

export function StatusBadge({ status }: { status: ContactStatus }) {
  return <Badge tone={tones[status]}>{statusLabel(status)}</Badge>;
}

/** On the suppression list: Mailmark never mails the address, whatever its status. */
export function SuppressedBadge() {
  return (
    <span title="On the suppression list: never mailed">
      <Badge tone="danger">
        <svg viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2" className="mr-1 size-3" aria-hidden="true">
          <path d="M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18ZM5.6 5.6l12.8 12.8" strokeLinecap="round" />
        </svg>
        Suppressed
      </Badge>
    </span>
  );
}
