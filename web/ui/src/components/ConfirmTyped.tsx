import { useEffect, useState, type FormEvent, type ReactNode } from "react";
import { Alert } from "./Alert";
import { Button } from "./Button";
import { Dialog } from "./Dialog";
import { Input } from "./Field";

type ConfirmTypedProps = {
  open: boolean;
  onClose: () => void;
  /** Runs when the typed text matches; the dialog shows its error and stays open if it throws. */
  onConfirm: () => Promise<unknown>;
  title: ReactNode;
  /** What the action deletes or ends, spelled out. */
  description: ReactNode;
  /** The text the person must type (a domain or an address). */
  confirmText: string;
  actionLabel: string;
};

/** A destructive action that runs only after the person typed the name of what it destroys. */
export function ConfirmTyped({ open, onClose, onConfirm, title, description, confirmText, actionLabel }: ConfirmTypedProps) {
  const [typed, setTyped] = useState("");
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    if (open) {
      setTyped("");
      setError(null);
      setPending(false);
    }
  }, [open]);

  const matches = typed.trim() === confirmText;

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (!matches || pending) return;
    setPending(true);
    setError(null);
    try {
      await onConfirm();
      onClose();
    } catch (caught) {
      setError(caught instanceof Error ? caught.message : String(caught));
    } finally {
      setPending(false);
    }
  }

  return (
    <Dialog open={open} onClose={onClose} title={title} description={description} busy={pending} size="sm">
      <form id="confirm-typed" onSubmit={submit} className="space-y-4">
        {error ? <Alert tone="error">{error}</Alert> : null}
        <Input
          label={
            <>
              Type <span className="font-mono font-semibold">{confirmText}</span> to confirm
            </>
          }
          value={typed}
          onChange={(event) => setTyped(event.target.value)}
          autoComplete="off"
          autoCapitalize="off"
          spellCheck={false}
          data-autofocus
        />
      </form>
      <div className="mt-4 flex flex-col-reverse gap-2 sm:flex-row sm:justify-end">
        <Button variant="secondary" onClick={onClose} disabled={pending}>
          Cancel
        </Button>
        <Button variant="danger" type="submit" form="confirm-typed" disabled={!matches} loading={pending}>
          {actionLabel}
        </Button>
      </div>
    </Dialog>
  );
}
