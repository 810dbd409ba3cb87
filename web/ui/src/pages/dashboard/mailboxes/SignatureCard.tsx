import { useEffect, useId, useState, type FormEvent } from "react";
import { mailboxApi, type Mailbox, type SignatureFormat } from "../../../api/mailboxes";
import { Alert } from "../../../components/Alert";
import { Button } from "../../../components/Button";
import { Card } from "../../../components/Card";
import { Textarea } from "../../../components/Field";
import { useToast } from "../../../components/Toast";
import { useAction } from "../../../lib/useAsync";

const FORMATS: { value: SignatureFormat; label: string }[] = [
  { value: "text", label: "Plain text" },
  { value: "html", label: "HTML" },
];

/**
 * The signature appended to outgoing mail. The preview shows the saved signature as the server
 * returned it (sanitised), in a sandboxed frame: what was typed is never rendered as HTML here.
 */
export function SignatureCard({ mailbox, onSaved }: { mailbox: Mailbox; onSaved: (mailbox: Mailbox) => void }) {
  const [format, setFormat] = useState<SignatureFormat>(mailbox.signatureFormat);
  const [text, setText] = useState(mailbox.signature);
  const save = useAction((address: string) => mailboxApi.update(address, { signature: text, signatureFormat: format }));
  const toast = useToast();
  const groupId = useId();

  useEffect(() => {
    setFormat(mailbox.signatureFormat);
    setText(mailbox.signature);
  }, [mailbox.address, mailbox.signature, mailbox.signatureFormat]);

  const changed = format !== mailbox.signatureFormat || text !== mailbox.signature;

  async function submit(event: FormEvent) {
    event.preventDefault();
    const saved = await save.run(mailbox.address);
    if (saved) {
      onSaved(saved);
      toast.success("Signature saved.");
    }
  }

  return (
    <Card title="Signature" description="Added to the end of mail sent from this mailbox.">
      <form onSubmit={submit} className="space-y-4">
        {save.error ? <Alert tone="error">{save.error.message}</Alert> : null}
        <fieldset>
          <legend id={groupId} className="mb-1.5 text-sm font-medium text-zinc-900 dark:text-zinc-100">
            Format
          </legend>
          <div className="inline-flex rounded-lg bg-zinc-100 p-1 dark:bg-zinc-800">
            {FORMATS.map((option) => (
              <label
                key={option.value}
                className={`relative cursor-pointer rounded-md px-3 py-1.5 text-sm font-medium has-[:focus-visible]:outline-2 has-[:focus-visible]:outline-indigo-600 ${
                  format === option.value
                    ? "bg-white text-zinc-900 shadow-sm dark:bg-zinc-950 dark:text-white"
                    : "text-zinc-700 hover:text-zinc-900 dark:text-zinc-300 dark:hover:text-white"
                }`}
              >
                <input
                  type="radio"
                  name={`${groupId}-format`}
                  value={option.value}
                  checked={format === option.value}
                  onChange={() => setFormat(option.value)}
                  className="absolute inset-0 m-0 size-full cursor-pointer opacity-0"
                />
                {option.label}
              </label>
            ))}
          </div>
        </fieldset>
        <Textarea
          label="Signature"
          value={text}
          onChange={(event) => setText(event.target.value)}
          rows={5}
          maxLength={10_000}
          spellCheck={format === "text"}
          className="[&_textarea]:font-mono"
          error={save.error?.field === "signature" ? save.error.message : null}
          hint={
            format === "html"
              ? "Formatting, links and images by URL are kept; scripts, styles, forms and event handlers are removed when saved."
              : "Sent as written."
          }
        />
        <div className="flex flex-wrap items-center justify-end gap-3">
          {changed ? <span className="text-sm text-zinc-600 dark:text-zinc-400">Unsaved changes</span> : null}
          <Button type="submit" loading={save.pending} disabled={!changed}>
            {save.pending ? "Saving…" : "Save signature"}
          </Button>
        </div>
      </form>

      <div className="mt-6 border-t border-zinc-200 pt-4 dark:border-zinc-800">
        <h3 className="text-sm font-medium text-zinc-900 dark:text-zinc-100">Preview of the saved signature</h3>
        {mailbox.signature === "" ? (
          <p className="mt-1 text-sm text-zinc-600 dark:text-zinc-400">No signature yet.</p>
        ) : mailbox.signatureFormat === "html" ? (
          <iframe
            title="Signature preview"
            sandbox=""
            srcDoc={mailbox.signature}
            className="mt-2 h-28 w-full rounded-lg bg-white ring-1 ring-zinc-200 dark:ring-zinc-700"
          />
        ) : (
          <pre className="mt-2 rounded-lg bg-zinc-50 p-3 font-sans text-sm whitespace-pre-wrap text-zinc-800 ring-1 ring-zinc-200 dark:bg-zinc-950 dark:text-zinc-200 dark:ring-zinc-800">
            {mailbox.signature}
          </pre>
        )}
      </div>
    </Card>
  );
}
