import { useEffect, useState, type FormEvent } from "react";
import {
  CONTACT_STATUSES,
  contactsApi,
  type Contact,
  type ContactInput,
  type ContactStatus,
  type FieldValue,
} from "../../../api/contacts";
import { Alert } from "../../../components/Alert";
import { Button } from "../../../components/Button";
import { Dialog } from "../../../components/Dialog";
import { Input, Select } from "../../../components/Field";
import { useAction } from "../../../lib/useAsync";
import { statusLabel } from "./StatusBadge";

type FieldRow = { name: string; value: string };

function fieldRows(fields: Record<string, FieldValue>): FieldRow[] {
  return Object.entries(fields).map(([name, value]) => ({ name, value: value === null ? "" : String(value) }));
}

/** Adds a contact, or changes one (`contact` given): the server checks every value. */
export function ContactDialog({
  open,
  contact,
  onClose,
  onSaved,
}: {
  open: boolean;
  contact: Contact | null;
  onClose: () => void;
  onSaved: (contact: Contact) => void;
}) {
  const [email, setEmail] = useState("");
  const [firstName, setFirstName] = useState("");
  const [lastName, setLastName] = useState("");
  const [company, setCompany] = useState("");
  const [tags, setTags] = useState("");
  const [status, setStatus] = useState<ContactStatus>("subscribed");
  const [fields, setFields] = useState<FieldRow[]>([]);
  const save = useAction((body: ContactInput) =>
    contact ? contactsApi.update(contact._id, body) : contactsApi.create(body),
  );

  useEffect(() => {
    if (!open) return;
    setEmail(contact?.email ?? "");
    setFirstName(contact?.firstName ?? "");
    setLastName(contact?.lastName ?? "");
    setCompany(contact?.company ?? "");
    setTags(contact?.tags.join(", ") ?? "");
    setStatus(contact?.status ?? "subscribed");
    setFields(contact ? fieldRows(contact.fields) : []);
    save.setError(null);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [open, contact]);

  async function submit(event: FormEvent) {
    event.preventDefault();
    const custom: Record<string, FieldValue> = {};
    for (const row of fields) {
      if (row.name.trim() !== "") custom[row.name.trim()] = row.value;
    }
    const saved = await save.run({
      email: email.trim(),
      firstName,
      lastName,
      company,
      tags: tags
        .split(/[,;]/)
        .map((tag) => tag.trim())
        .filter(Boolean),
      status,
      fields: custom,
    });
    if (saved) onSaved(saved);
  }

  const error = save.error;
  const fieldError = (name: string) => (error?.field === name ? error.message : null);
  const general = error && !["email", "firstName", "lastName", "company", "tags", "status"].includes(error.field ?? "");

  return (
    <Dialog
      open={open}
      onClose={onClose}
      busy={save.pending}
      size="lg"
      title={contact ? `Edit ${contact.email}` : "Add a contact"}
      footer={
        <>
          <Button variant="secondary" onClick={onClose} disabled={save.pending}>
            Cancel
          </Button>
          <Button type="submit" form="contact-form" loading={save.pending} disabled={email.trim() === ""}>
            {contact ? "Save changes" : "Add contact"}
          </Button>
        </>
      }
    >
      <form id="contact-form" onSubmit={(event) => void submit(event)} className="space-y-4" noValidate>
        {general ? <Alert tone="error">{error.message}</Alert> : null}
        {contact?.suppressed ? (
          <Alert tone="warning" title="This address is suppressed">
            It bounced or complained before: Mailmark never mails it, whatever its status.
          </Alert>
        ) : null}
        <Input
          label="Email"
          type="email"
          autoComplete="off"
          value={email}
          onChange={(event) => setEmail(event.target.value)}
          error={fieldError("email")}
          data-autofocus
          required
        />
        <div className="grid gap-4 sm:grid-cols-2">
          <Input label="First name" value={firstName} onChange={(event) => setFirstName(event.target.value)} error={fieldError("firstName")} />
          <Input label="Last name" value={lastName} onChange={(event) => setLastName(event.target.value)} error={fieldError("lastName")} />
        </div>
        <div className="grid gap-4 sm:grid-cols-2">
          <Input label="Company" value={company} onChange={(event) => setCompany(event.target.value)} error={fieldError("company")} />
          <Select label="Status" value={status} onChange={(event) => setStatus(event.target.value as ContactStatus)} error={fieldError("status")}>
            {CONTACT_STATUSES.map((value) => (
              <option key={value} value={value}>
                {statusLabel(value)}
              </option>
            ))}
          </Select>
        </div>
        <Input
          label="Tags"
          value={tags}
          onChange={(event) => setTags(event.target.value)}
          hint="Separated by commas, e.g. customer, vip."
          error={fieldError("tags")}
        />
        <fieldset>
          <legend className="text-sm font-medium text-zinc-900 dark:text-zinc-100">Custom fields</legend>
          <p className="mt-0.5 text-sm text-zinc-600 dark:text-zinc-400">
            Used in campaigns as merge tags, e.g. {"{{plan}}"}.
          </p>
          <div className="mt-2 space-y-2">
            {fields.map((row, index) => (
              <div key={index} className="flex items-end gap-2">
                <Input
                  className="flex-1"
                  label={<span className="sr-only">Field {index + 1} name</span>}
                  placeholder="Name"
                  value={row.name}
                  onChange={(event) =>
                    setFields((current) => current.map((item, i) => (i === index ? { ...item, name: event.target.value } : item)))
                  }
                />
                <Input
                  className="flex-1"
                  label={<span className="sr-only">Field {index + 1} value</span>}
                  placeholder="Value"
                  value={row.value}
                  onChange={(event) =>
                    setFields((current) => current.map((item, i) => (i === index ? { ...item, value: event.target.value } : item)))
                  }
                />
                <Button
                  variant="ghost"
                  aria-label={`Remove field ${row.name || index + 1}`}
                  onClick={() => setFields((current) => current.filter((_, i) => i !== index))}
                >
                  Remove
                </Button>
              </div>
            ))}
          </div>
          {fieldError("fields") ? (
            <p role="alert" className="mt-1.5 text-sm text-red-700 dark:text-red-400">
              {fieldError("fields")}
            </p>
          ) : null}
          <Button variant="secondary" size="sm" className="mt-2" onClick={() => setFields((current) => [...current, { name: "", value: "" }])}>
            Add a field
          </Button>
        </fieldset>
      </form>
    </Dialog>
  );
}
