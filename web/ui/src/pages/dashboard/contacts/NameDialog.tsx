import { useEffect, useState, type FormEvent } from "react";
import { Button } from "../../../components/Button";
import { Dialog } from "../../../components/Dialog";
import { Input } from "../../../components/Field";
import { useAction } from "../../../lib/useAsync";

/** Asks for a list's name (a new list, or a new name for one); the server's error shows under it. */
export function NameDialog<T>({
  open,
  title,
  initial = "",
  actionLabel,
  onClose,
  onSubmit,
  onDone,
}: {
  open: boolean;
  title: string;
  initial?: string;
  actionLabel: string;
  onClose: () => void;
  onSubmit: (name: string) => Promise<T>;
  onDone: (result: T) => void;
}) {
  const [name, setName] = useState(initial);
  const action = useAction(onSubmit);

  useEffect(() => {
    if (open) {
      setName(initial);
      action.setError(null);
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [open, initial]);

  async function submit(event: FormEvent) {
    event.preventDefault();
    const result = await action.run(name.trim());
    if (result !== undefined) onDone(result);
  }

  return (
    <Dialog
      open={open}
      onClose={onClose}
      busy={action.pending}
      size="sm"
      title={title}
      footer={
        <>
          <Button variant="secondary" onClick={onClose} disabled={action.pending}>
            Cancel
          </Button>
          <Button type="submit" form="list-name-form" loading={action.pending} disabled={name.trim() === ""}>
            {actionLabel}
          </Button>
        </>
      }
    >
      <form id="list-name-form" onSubmit={(event) => void submit(event)}>
        <Input label="List name" value={name} onChange={(event) => setName(event.target.value)} error={action.error?.message} data-autofocus />
      </form>
    </Dialog>
  );
}
