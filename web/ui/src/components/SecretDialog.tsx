import type { ReactNode } from "react";
import { Alert } from "./Alert";
import { Button } from "./Button";
import { CopyButton } from "./CopyButton";
import { Dialog } from "./Dialog";

/** Shows a key, password or signing secret the one time the server returns it, with a copy button. */
export function SecretDialog({
  secret,
  title,
  description,
  label,
  copyLabel = `Copy ${label}`,
  warning = "Copy it now and keep it somewhere safe: it is shown only once and cannot be retrieved later.",
  onClose,
}: {
  secret: string | null;
  title: string;
  description: ReactNode;
  /** What the secret is ("API key"): the field's name. */
  label: string;
  /** The copy button's name; "Copy <label>" by default. */
  copyLabel?: string;
  /** The warning above it; by default: copy it now, it is not shown again. */
  warning?: ReactNode;
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
        <Alert tone="warning">{warning}</Alert>
        <div className="flex items-center gap-2">
          <input
            readOnly
            value={secret ?? ""}
            aria-label={label}
            onFocus={(event) => event.currentTarget.select()}
            spellCheck={false}
            className="min-w-0 flex-1 rounded-lg border-0 bg-zinc-50 px-3 py-2 font-mono text-sm text-zinc-900 ring-1 ring-zinc-300 ring-inset focus:ring-2 focus:ring-indigo-600 focus:outline-none dark:bg-zinc-950 dark:text-white dark:ring-zinc-700 dark:focus:ring-indigo-400"
          />
          <CopyButton value={secret ?? ""} label={copyLabel} />
        </div>
      </div>
    </Dialog>
  );
}
