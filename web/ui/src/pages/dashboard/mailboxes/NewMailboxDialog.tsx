import { useEffect, useState, type FormEvent } from "react";
import type { DomainSummary } from "../../../api/domains";
import { mailboxApi, type Mailbox } from "../../../api/mailboxes";
import { Alert } from "../../../components/Alert";
import { Button } from "../../../components/Button";
import { Dialog } from "../../../components/Dialog";
import { Input, Select } from "../../../components/Field";
import { useAction } from "../../../lib/useAsync";

/** Creates a mailbox from a local part; the chosen domain is appended where the person types. */
export function NewMailboxDialog({
  open,
  onClose,
  domains,
  initialDomain,
  onCreated,
}: {
  open: boolean;
  onClose: () => void;
  domains: DomainSummary[];
  /** The domain to start with (opened from a domain's page); else the first verified one. */
  initialDomain?: string;
  onCreated: (mailbox: Mailbox) => void;
}) {
  const [domain, setDomain] = useState("");
  const [localPart, setLocalPart] = useState("");
  const [displayName, setDisplayName] = useState("");
  const create = useAction(mailboxApi.create);

  useEffect(() => {
    if (open) {
      const verified = domains.filter((item) => item.verified);
      setDomain(verified.find((item) => item.name === initialDomain)?.name ?? verified[0]?.name ?? "");
      setLocalPart("");
      setDisplayName("");
      create.setError(null);
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [open]);

  async function submit(event: FormEvent) {
    event.preventDefault();
    const mailbox = await create.run({
      domain,
      localPart: localPart.trim(),
      ...(displayName.trim() ? { displayName: displayName.trim() } : {}),
    });
    if (mailbox) onCreated(mailbox);
  }

  const error = create.error;
  const fieldError = (field: string) => (error?.field === field ? error.message : null);
  const generalError = error && !["localPart", "domain", "displayName"].includes(error.field ?? "") ? error : null;

  return (
    <Dialog
      open={open}
      onClose={onClose}
      busy={create.pending}
      title="New mailbox"
      description="Enter the part before the @; the domain is added for you."
      footer={
        <>
          <Button variant="secondary" onClick={onClose} disabled={create.pending}>
            Cancel
          </Button>
          <Button type="submit" form="new-mailbox" loading={create.pending} disabled={!domain || localPart.trim() === ""}>
            {create.pending ? "Creating…" : "Create mailbox"}
          </Button>
        </>
      }
    >
      <form id="new-mailbox" onSubmit={submit} className="space-y-4" noValidate>
        {generalError ? <Alert tone="error">{generalError.message}</Alert> : null}
        <Select
          label="Domain"
          value={domain}
          onChange={(event) => setDomain(event.target.value)}
          error={fieldError("domain")}
          hint={domains.some((item) => !item.verified) ? "Mailboxes can be created once a domain's DNS records verify." : undefined}
        >
            {domains.map((item) => (
              <option key={item.name} value={item.name} disabled={!item.verified}>
                {item.verified ? item.name : `${item.name} (waiting for DNS)`}
              </option>
            ))}
        </Select>
        <Input
          label="Address"
          value={localPart}
          onChange={(event) => setLocalPart(event.target.value)}
          error={fieldError("localPart")}
          placeholder="hello"
          hint={localPart.trim() ? `The address will be ${localPart.trim()}@${domain}.` : "For example hello, sales or support."}
          autoComplete="off"
          autoCapitalize="off"
          spellCheck={false}
          maxLength={64}
          data-autofocus
          suffix={
            <span className="flex items-center rounded-lg bg-zinc-100 px-3 text-sm text-zinc-700 ring-1 ring-zinc-200 ring-inset dark:bg-zinc-800 dark:text-zinc-300 dark:ring-zinc-700">
              @{domain}
            </span>
          }
        />
        <Input
          label="Display name (optional)"
          value={displayName}
          onChange={(event) => setDisplayName(event.target.value)}
          error={fieldError("displayName")}
          placeholder="Support Team"
          hint="Shown as the sender's name in recipients' mail apps."
          maxLength={200}
        />
      </form>
    </Dialog>
  );
}
