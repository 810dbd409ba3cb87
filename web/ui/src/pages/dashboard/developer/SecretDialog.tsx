import type { ReactNode } from "react";
import { Alert } from "../../../components/Alert";
import { Button } from "../../../components/Button";
import { CopyButton } from "../../../components/CopyButton";
import { Dialog } from "../../../components/Dialog";

/** Shows a key or signing secret the one time the server returns it, with a copy button. */
export function SecretDialog({
  secret,
  title,
  description,
  label,
  onClose,
}: {
  secret: string | null;
  title: string;
  description: ReactNode;
  /** What the secret is ("API key"), for the copy button's name. */
  label: string;
  onClose: () => void;
}) {
  return (
    <Dialog
      open={secret !== null}
      onClose={onClose}
      title={title}
      description={description}
      footer={<Button onClick={onClose}>I have saved it</Button>}
    >
      <div className="space-y-4">
        <Alert tone="warning">Copy it now and keep it somewhere safe: it is shown only once and cannot be retrieved later.</Alert>
        <div className="flex items-center gap-2 rounded-lg bg-zinc-50 p-3 ring-1 ring-zinc-200 dark:bg-zinc-950 dark:ring-zinc-800">
          <code className="min-w-0 flex-1 font-mono text-sm break-all text-zinc-900 dark:text-white" aria-label={label}>
            {secret}
          </code>
          <CopyButton value={secret ?? ""} label={`Copy ${label}`} />
        </div>
      </div>
    </Dialog>
  );
}
