import { useEffect, useState, type FormEvent } from "react";
import { domainApi, type DomainDetail } from "../../../api/domains";
import { Alert } from "../../../components/Alert";
import { Button } from "../../../components/Button";
import { Dialog } from "../../../components/Dialog";
import { Input, Select } from "../../../components/Field";
import { useAction } from "../../../lib/useAsync";

/** Asks for a domain name and adds it; the server's answer (a quota text, say) is shown as is. */
export function AddDomainDialog({
  open,
  domains = [],
  onClose,
  onAdded,
}: {
  open: boolean;
  /** The account's domains a new one may become an alias of. */
  domains?: string[];
  onClose: () => void;
  onAdded: (domain: DomainDetail) => void;
}) {
  const [name, setName] = useState("");
  const [aliasOf, setAliasOf] = useState("");
  const add = useAction(domainApi.add);

  useEffect(() => {
    if (open) {
      setName("");
      setAliasOf("");
      add.setError(null);
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [open]);

  async function submit(event: FormEvent) {
    event.preventDefault();
    const domain = await add.run(name.trim().toLowerCase().replace(/\.$/, ""), aliasOf || null);
    if (domain) onAdded(domain);
  }

  const fieldError = add.error?.field === "name" ? add.error.message : null;
  return (
    <Dialog
      open={open}
      onClose={onClose}
      busy={add.pending}
      title="Add a domain"
      description="Enter a domain you own. Mailmark then lists the DNS records to publish at your DNS provider."
      footer={
        <>
          <Button variant="secondary" onClick={onClose} disabled={add.pending}>
            Cancel
          </Button>
          <Button type="submit" form="add-domain" loading={add.pending} disabled={name.trim() === ""}>
            {add.pending ? "Adding…" : "Add domain"}
          </Button>
        </>
      }
    >
      <form id="add-domain" onSubmit={submit} className="space-y-4" noValidate>
        {add.error && !fieldError ? <Alert tone="error">{add.error.message}</Alert> : null}
        <Input
          label="Domain name"
          name="domain"
          placeholder="example.com"
          value={name}
          onChange={(event) => setName(event.target.value)}
          error={fieldError}
          hint="The part after the @ in your addresses, without www."
          autoComplete="off"
          autoCapitalize="off"
          spellCheck={false}
          inputMode="url"
          maxLength={253}
          required
          data-autofocus
        />
        {domains.length > 0 ? (
          <Select
            label="Mail for this domain"
            name="aliasOf"
            value={aliasOf}
            onChange={(event) => setAliasOf(event.target.value)}
            hint="An alias domain has no mailboxes of its own: hello@ the new domain reaches hello@ the one you pick."
          >
            <option value="">Goes to its own mailboxes</option>
            {domains.map((domain) => (
              <option key={domain} value={domain}>
                Goes to the same addresses at {domain}
              </option>
            ))}
          </Select>
        ) : null}
      </form>
    </Dialog>
  );
}
