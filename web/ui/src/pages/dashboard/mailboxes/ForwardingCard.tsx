import { useEffect, useState, type FormEvent } from "react";
import { forwardingApi, type Forwarding } from "../../../api/forwarding";
import type { Mailbox } from "../../../api/mailboxes";
import { Alert } from "../../../components/Alert";
import { Button } from "../../../components/Button";
import { Card } from "../../../components/Card";
import { Checkbox, Input } from "../../../components/Field";
import { Spinner } from "../../../components/Spinner";
import { useToast } from "../../../components/Toast";
import { useAction, useAsync } from "../../../lib/useAsync";

/** Where the mailbox's mail is sent on to (other addresses), and whether a copy stays here. */
export function ForwardingCard({ mailbox }: { mailbox: Mailbox }) {
  const current = useAsync(() => forwardingApi.get(mailbox.address), [mailbox.address]);

  return (
    <Card
      title="Forwarding"
      description="Send every message that arrives at this address on to other addresses as well."
    >
      {current.data ? (
        <ForwardingForm mailbox={mailbox} saved={current.data} onSaved={current.setData} />
      ) : current.error ? (
        <Alert tone="error">{current.error.message}</Alert>
      ) : (
        <div className="flex justify-center py-4 text-zinc-500">
          <Spinner className="size-5" label="Loading forwarding" />
        </div>
      )}
    </Card>
  );
}

function ForwardingForm({
  mailbox,
  saved,
  onSaved,
}: {
  mailbox: Mailbox;
  saved: Forwarding;
  onSaved: (forwarding: Forwarding) => void;
}) {
  const [addresses, setAddresses] = useState<string[]>(rows(saved));
  const [keepCopy, setKeepCopy] = useState(saved.keepCopy);
  const save = useAction((targets: string[], keep: boolean) => forwardingApi.set(mailbox.address, targets, keep));
  const toast = useToast();

  useEffect(() => {
    setAddresses(rows(saved));
    setKeepCopy(saved.keepCopy);
  }, [saved]);

  const filled = addresses.map((address) => address.trim()).filter(Boolean);
  const changed =
    filled.join("\n") !== saved.addresses.join("\n") || (filled.length > 0 && keepCopy !== saved.keepCopy);
  const fieldIndex = save.error?.field?.match(/^addresses\[(\d+)\]$/)?.[1];

  async function store(targets: string[], keep: boolean) {
    const answer = await save.run(targets, keep);
    if (answer) {
      onSaved(answer);
      toast.success(answer.addresses.length ? "Forwarding saved." : "Forwarding turned off.");
    }
  }

  async function submit(event: FormEvent) {
    event.preventDefault();
    await store(filled, keepCopy);
  }

  return (
    <form onSubmit={submit} className="space-y-4" aria-label="Forwarding">
      <p className="text-sm text-zinc-700 dark:text-zinc-300" aria-live="polite">
        {saved.addresses.length ? (
          <>
            <span className="font-medium text-emerald-700 dark:text-emerald-400">On</span>: mail to {mailbox.address} is
            forwarded to {saved.addresses.join(", ")}
            {saved.keepCopy ? ", and a copy is kept here." : ". No copy is kept here."}
          </>
        ) : (
          <>
            <span className="font-medium">Off</span>: mail to {mailbox.address} stays in this mailbox only.
          </>
        )}
      </p>
      {save.error && fieldIndex === undefined ? <Alert tone="error">{save.error.message}</Alert> : null}
      <div className="space-y-3">
        {addresses.map((address, index) => (
          <Input
            key={index}
            label={addresses.length > 1 ? `Forward to (address ${index + 1})` : "Forward to"}
            type="email"
            inputMode="email"
            autoComplete="off"
            placeholder="name@example.com"
            maxLength={320}
            value={address}
            onChange={(event) =>
              setAddresses((all) => all.map((value, at) => (at === index ? event.target.value : value)))
            }
            error={fieldIndex !== undefined && Number(fieldIndex) === index ? (save.error?.message ?? null) : null}
            suffix={
              addresses.length > 1 ? (
                <Button
                  variant="secondary"
                  aria-label={`Remove address ${index + 1}`}
                  onClick={() => setAddresses((all) => all.filter((_, at) => at !== index))}
                >
                  Remove
                </Button>
              ) : undefined
            }
          />
        ))}
        {addresses.length < saved.maxAddresses ? (
          <Button variant="ghost" size="sm" onClick={() => setAddresses((all) => [...all, ""])}>
            + Add another address
          </Button>
        ) : (
          <p className="text-sm text-zinc-600 dark:text-zinc-400">
            Up to {saved.maxAddresses} addresses.
          </p>
        )}
      </div>
      <Checkbox
        label="Keep a copy in this mailbox"
        hint="Turn off to keep nothing here once a message is forwarded. Spam is never forwarded: it stays in Junk."
        checked={keepCopy}
        onChange={(event) => setKeepCopy(event.target.checked)}
      />
      <p className="text-sm text-zinc-600 dark:text-zinc-400">
        Forwarded mail counts towards the monthly email limit. Bounces from the other addresses go back to the
        original sender.
      </p>
      <div className="flex flex-col-reverse gap-2 sm:flex-row sm:justify-end">
        {saved.addresses.length ? (
          <Button variant="secondary" disabled={save.pending} onClick={() => void store([], true)}>
            Turn off forwarding
          </Button>
        ) : null}
        <Button type="submit" loading={save.pending} disabled={!changed}>
          {save.pending ? "Saving…" : "Save forwarding"}
        </Button>
      </div>
    </form>
  );
}

function rows(forwarding: Forwarding): string[] {
  return forwarding.addresses.length ? [...forwarding.addresses] : [""];
}
