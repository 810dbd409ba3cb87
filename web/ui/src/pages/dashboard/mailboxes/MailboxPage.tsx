import { useEffect, useState, type FormEvent, type ReactNode } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { useAccount } from "../../../account/AccountContext";
import { mailboxApi, mailboxesApi, type Mailbox } from "../../../api/mailboxes";
import { useAuth } from "../../../auth/AuthContext";
import { Alert } from "../../../components/Alert";
import { Button } from "../../../components/Button";
import { Card, PageHeader } from "../../../components/Card";
import { ConfirmTyped } from "../../../components/ConfirmTyped";
import { Input } from "../../../components/Field";
import { Spinner } from "../../../components/Spinner";
import { useToast } from "../../../components/Toast";
import { formatDate } from "../../../lib/format";
import { useAction, useAsync } from "../../../lib/useAsync";
import { ConnectionCard } from "./ConnectionCard";
import { ForwardingCard } from "./ForwardingCard";
import { FiltersCard } from "./FiltersCard";
import { PasswordCard } from "./PasswordCard";
import { SignatureCard } from "./SignatureCard";
import { VacationCard } from "./VacationCard";

export default function MailboxPage() {
  const { address = "" } = useParams();
  const mailbox = useAsync(() => mailboxesApi.get(address), [address]);
  const back = (
    <Link to="/dashboard/mailboxes" className="font-medium text-indigo-700 hover:underline dark:text-indigo-300">
      ← Mailboxes
    </Link>
  );

  if (!mailbox.data) {
    return (
      <>
        <PageHeader title={address} back={back} />
        {mailbox.error ? (
          <Alert tone="error">{mailbox.error.message}</Alert>
        ) : (
          <div className="flex justify-center py-16 text-zinc-500">
            <Spinner className="size-6" label="Loading the mailbox" />
          </div>
        )}
      </>
    );
  }
  return <MailboxView mailbox={mailbox.data} back={back} replace={mailbox.setData} reload={mailbox.reload} />;
}

function MailboxView({
  mailbox,
  back,
  replace,
  reload,
}: {
  mailbox: Mailbox;
  back: ReactNode;
  replace: (mailbox: Mailbox) => void;
  reload: () => Promise<void>;
}) {
  const { canManage } = useAuth();
  const navigate = useNavigate();
  const toast = useToast();
  const account = useAccount();
  const [deleting, setDeleting] = useState(false);

  return (
    <>
      <PageHeader
        back={back}
        title={mailbox.address}
        description={`${mailbox.displayName ? `${mailbox.displayName} · ` : ""}Created ${formatDate(mailbox.createdAt)}`}
      />
      <div className="space-y-6">
        <DisplayNameCard mailbox={mailbox} onSaved={replace} />
        <SignatureCard mailbox={mailbox} onSaved={replace} />
        <ForwardingCard mailbox={mailbox} />
        <VacationCard address={mailbox.address} />
        <FiltersCard mailbox={mailbox} />
        <PasswordCard mailbox={mailbox} onChanged={() => void reload()} />
        <ConnectionCard address={mailbox.address} />
        {canManage ? (
          <Card
            title="Delete mailbox"
            description="Permanently removes the mailbox and all mail stored in it."
            actions={
              <Button variant="danger" onClick={() => setDeleting(true)}>
                Delete mailbox
              </Button>
            }
          />
        ) : null}
      </div>
      <ConfirmTyped
        open={deleting}
        onClose={() => setDeleting(false)}
        title={`Delete ${mailbox.address}?`}
        confirmText={mailbox.address}
        actionLabel="Delete mailbox"
        description={
          <>
            <p>This permanently deletes, and cannot be undone:</p>
            <ul className="mt-2 list-disc space-y-0.5 pl-5">
              <li>every message in the mailbox, in all its folders</li>
              <li>its place in sender groups</li>
              <li>its password: mail apps signed in to it stop working</li>
            </ul>
            <p className="mt-2">Mail sent to {mailbox.address} will be refused afterwards.</p>
          </>
        }
        onConfirm={async () => {
          await mailboxApi.remove(mailbox.address);
          toast.success(`${mailbox.address} deleted.`);
          void account.reload();
          navigate("/dashboard/mailboxes", { replace: true });
        }}
      />
    </>
  );
}

function DisplayNameCard({ mailbox, onSaved }: { mailbox: Mailbox; onSaved: (mailbox: Mailbox) => void }) {
  const [name, setName] = useState(mailbox.displayName);
  const save = useAction((address: string) => mailboxApi.update(address, { displayName: name.trim() }));
  const toast = useToast();

  useEffect(() => setName(mailbox.displayName), [mailbox.address, mailbox.displayName]);

  async function submit(event: FormEvent) {
    event.preventDefault();
    const saved = await save.run(mailbox.address);
    if (saved) {
      onSaved(saved);
      toast.success("Display name saved.");
    }
  }

  return (
    <Card title="Sender" description="How mail from this address is labelled in recipients' mail apps.">
      <form onSubmit={submit} className="space-y-4">
        <Input
          label="Display name"
          value={name}
          onChange={(event) => setName(event.target.value)}
          placeholder="Support Team"
          maxLength={200}
          error={save.error?.message ?? null}
        />
        <div className="flex justify-end">
          <Button type="submit" loading={save.pending} disabled={name.trim() === mailbox.displayName}>
            {save.pending ? "Saving…" : "Save display name"}
          </Button>
        </div>
      </form>
    </Card>
  );
}
