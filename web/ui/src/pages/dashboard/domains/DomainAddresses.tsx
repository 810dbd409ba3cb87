import { useEffect, useState, type FormEvent } from "react";
import { aliasesApi, type Alias } from "../../../api/domains";
import { mailboxesApi, type Mailbox } from "../../../api/mailboxes";
import { Alert } from "../../../components/Alert";
import { Button } from "../../../components/Button";
import { Card } from "../../../components/Card";
import { ConfirmDialog } from "../../../components/ConfirmDialog";
import { Dialog } from "../../../components/Dialog";
import { Checkbox, Input, Select } from "../../../components/Field";
import { Spinner } from "../../../components/Spinner";
import { useToast } from "../../../components/Toast";
import { plural } from "../../../lib/format";
import { useAction, useAsync, type AsyncState } from "../../../lib/useAsync";

/**
 * The domain page's "Aliases" and "Catch-all" sections: addresses that deliver to mailboxes of the
 * account without being mailboxes themselves.
 */
export function DomainAddresses({ name }: { name: string }) {
  // Every mailbox of the account: an alias may deliver to mailboxes of its other domains too.
  const mailboxes = useAsync(() => mailboxesApi.list(), []);
  const aliases = useAsync(() => aliasesApi.list(name), [name]);
  const own = (mailboxes.data ?? []).filter((mailbox) => mailbox.domain === name);
  return (
    <>
      <AliasesCard name={name} aliases={aliases} mailboxes={mailboxes.data} />
      <CatchAllCard name={name} mailboxes={own} loaded={mailboxes.data !== undefined} />
    </>
  );
}

function AliasesCard({
  name,
  aliases,
  mailboxes,
}: {
  name: string;
  aliases: AsyncState<Alias[]>;
  mailboxes: Mailbox[] | undefined;
}) {
  const toast = useToast();
  const [adding, setAdding] = useState(false);
  const [removing, setRemoving] = useState<Alias | null>(null);
  const list = aliases.data;

  return (
    <Card
      title="Aliases"
      description={`Extra addresses at ${name} that deliver to one or more mailboxes, such as team@ for everyone on a team. Aliases do not count against your plan's mailboxes.`}
      actions={
        <Button variant="secondary" onClick={() => setAdding(true)} disabled={!mailboxes?.length}>
          Add alias
        </Button>
      }
    >
      {aliases.error ? (
        <Alert tone="error">{aliases.error.message}</Alert>
      ) : list === undefined ? (
        <div className="flex justify-center py-4 text-zinc-500">
          <Spinner className="size-5" label="Loading the aliases" />
        </div>
      ) : list.length === 0 ? (
        <p className="text-sm text-zinc-600 dark:text-zinc-400">
          {mailboxes?.length
            ? `No aliases yet. Mail to an address at ${name} that is neither a mailbox nor an alias is refused, unless the catch-all below takes it.`
            : "Create a mailbox first: an alias delivers to mailboxes."}
        </p>
      ) : (
        <ul aria-label="Aliases" className="-my-2 divide-y divide-zinc-200 dark:divide-zinc-800">
          {list.map((alias) => (
            <li key={alias.address} className="flex flex-wrap items-center justify-between gap-3 py-3">
              <div className="min-w-0">
                <p className="font-medium break-all text-zinc-900 dark:text-white">{alias.address}</p>
                <p className="text-sm break-all text-zinc-600 dark:text-zinc-400">
                  Delivers to {alias.targets.join(", ")}
                </p>
              </div>
              <Button
                variant="ghost"
                size="sm"
                onClick={() => setRemoving(alias)}
                aria-label={`Remove alias ${alias.address}`}
              >
                Remove
              </Button>
            </li>
          ))}
        </ul>
      )}

      <AddAliasDialog
        open={adding}
        domain={name}
        mailboxes={mailboxes ?? []}
        onClose={() => setAdding(false)}
        onAdded={(alias) => {
          setAdding(false);
          aliases.setData([...(list ?? []), alias].sort((a, b) => a.localPart.localeCompare(b.localPart)));
          toast.success(`${alias.address} now delivers to ${plural(alias.targets.length, "mailbox", "mailboxes")}.`);
        }}
      />
      <ConfirmDialog
        open={removing !== null}
        onClose={() => setRemoving(null)}
        title={`Remove ${removing?.address ?? "the alias"}?`}
        description={
          <p>
            Mail sent to {removing?.address} will be refused from now on. The mailboxes it delivered to keep their
            mail.
          </p>
        }
        actionLabel="Remove alias"
        onConfirm={async () => {
          if (!removing) return;
          await aliasesApi.remove(name, removing.localPart);
          aliases.setData((list ?? []).filter((alias) => alias.address !== removing.address));
          toast.success(`${removing.address} removed.`);
        }}
      />
    </Card>
  );
}

function AddAliasDialog({
  open,
  domain,
  mailboxes,
  onClose,
  onAdded,
}: {
  open: boolean;
  domain: string;
  mailboxes: Mailbox[];
  onClose: () => void;
  onAdded: (alias: Alias) => void;
}) {
  const [localPart, setLocalPart] = useState("");
  const [targets, setTargets] = useState<string[]>([]);
  const add = useAction(aliasesApi.add);

  useEffect(() => {
    if (open) {
      setLocalPart("");
      setTargets([]);
      add.setError(null);
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [open]);

  function toggle(address: string, on: boolean) {
    setTargets((current) => (on ? [...current, address] : current.filter((target) => target !== address)));
  }

  async function submit(event: FormEvent) {
    event.preventDefault();
    const alias = await add.run(domain, localPart.trim().toLowerCase(), targets);
    if (alias) onAdded(alias);
  }

  const field = add.error?.field;
  const nameError = field === "localPart" ? add.error!.message : null;
  const targetsError = field === "targets" ? add.error!.message : null;
  return (
    <Dialog
      open={open}
      onClose={onClose}
      busy={add.pending}
      title="Add an alias"
      description="Mail to the alias is delivered to every mailbox you choose, once each."
      footer={
        <>
          <Button variant="secondary" onClick={onClose} disabled={add.pending}>
            Cancel
          </Button>
          <Button
            type="submit"
            form="add-alias"
            loading={add.pending}
            disabled={localPart.trim() === "" || targets.length === 0}
          >
            {add.pending ? "Adding…" : "Add alias"}
          </Button>
        </>
      }
    >
      <form id="add-alias" onSubmit={submit} className="space-y-4" noValidate>
        {add.error && !nameError && !targetsError ? <Alert tone="error">{add.error.message}</Alert> : null}
        <Input
          label="Alias address"
          name="localPart"
          placeholder="team"
          value={localPart}
          onChange={(event) => setLocalPart(event.target.value)}
          error={nameError}
          suffix={<span className="self-center text-sm text-zinc-600 dark:text-zinc-400">@{domain}</span>}
          autoComplete="off"
          autoCapitalize="off"
          spellCheck={false}
          maxLength={64}
          required
          data-autofocus
        />
        <fieldset>
          <legend className="mb-2 text-sm font-medium text-zinc-900 dark:text-zinc-100">Deliver to</legend>
          <div className="max-h-60 space-y-2 overflow-y-auto">
            {mailboxes.map((mailbox) => (
              <Checkbox
                key={mailbox.address}
                label={mailbox.address}
                hint={mailbox.displayName || undefined}
                checked={targets.includes(mailbox.address)}
                onChange={(event) => toggle(mailbox.address, event.target.checked)}
              />
            ))}
          </div>
          {targetsError ? (
            <p role="alert" className="mt-1.5 text-sm text-red-700 dark:text-red-400">
              {targetsError}
            </p>
          ) : null}
        </fieldset>
      </form>
    </Dialog>
  );
}

const OFF = "";

function CatchAllCard({ name, mailboxes, loaded }: { name: string; mailboxes: Mailbox[]; loaded: boolean }) {
  const toast = useToast();
  const current = useAsync(() => aliasesApi.catchAll(name), [name]);
  const save = useAction(aliasesApi.setCatchAll);
  const [choice, setChoice] = useState<string | null>(null);
  const saved = current.data?.mailbox ?? OFF;
  const selected = choice ?? saved;

  async function submit(event: FormEvent) {
    event.preventDefault();
    const result = await save.run(name, selected === OFF ? null : selected);
    if (result) {
      current.setData(result);
      setChoice(null);
      toast.success(
        result.mailbox ? `Mail to unknown addresses at ${name} now goes to ${result.mailbox}.` : "Catch-all turned off.",
      );
    }
  }

  return (
    <Card
      title="Catch-all"
      description={`Where mail to an address at ${name} that is neither a mailbox nor an alias goes. Off, such mail is refused; on, the mailbox also receives spam sent to made-up addresses.`}
    >
      {current.error ? (
        <Alert tone="error">{current.error.message}</Alert>
      ) : !current.data || !loaded ? (
        <div className="flex justify-center py-4 text-zinc-500">
          <Spinner className="size-5" label="Loading the catch-all" />
        </div>
      ) : (
        <form onSubmit={submit} className="flex flex-wrap items-end gap-3" aria-label="Catch-all">
          <Select
            label="Unknown addresses"
            value={selected}
            onChange={(event) => setChoice(event.target.value)}
            className="min-w-64 flex-1"
            error={save.error?.message ?? null}
          >
            <option value={OFF}>Off: refuse them</option>
            {mailboxes.map((mailbox) => (
              <option key={mailbox.address} value={mailbox.address}>
                Deliver to {mailbox.address}
              </option>
            ))}
          </Select>
          <Button type="submit" loading={save.pending} disabled={selected === saved}>
            {save.pending ? "Saving…" : "Save"}
          </Button>
        </form>
      )}
    </Card>
  );
}
