import { useState, type FormEvent } from "react";
import { mailboxApi, type Mailbox } from "../../../api/mailboxes";
import { Alert } from "../../../components/Alert";
import { Button } from "../../../components/Button";
import { Card } from "../../../components/Card";
import { Input } from "../../../components/Field";
import { SecretDialog } from "../../../components/SecretDialog";
import { useToast } from "../../../components/Toast";
import { useAction } from "../../../lib/useAsync";

/** The password mail apps use (IMAP and SMTP): set one, or let the server generate one. */
export function PasswordCard({ mailbox, onChanged }: { mailbox: Mailbox; onChanged: () => void }) {
  const [password, setPassword] = useState("");
  const [visible, setVisible] = useState(false);
  const [generated, setGenerated] = useState<string | null>(null);
  // PUT answers 204: resolve to true so success and failure can be told apart.
  const set = useAction(async (address: string, value: string) => {
    await mailboxApi.setPassword(address, value);
    return true as const;
  });
  const generate = useAction(mailboxApi.generatePassword);
  const toast = useToast();

  async function submit(event: FormEvent) {
    event.preventDefault();
    generate.setError(null);
    if (await set.run(mailbox.address, password)) {
      setPassword("");
      setVisible(false);
      toast.success("Password saved.");
      onChanged();
    }
  }

  return (
    <Card
      title="Password for mail apps"
      description={
        mailbox.hasPassword
          ? "A password is set. Mail apps sign in with the full address and this password."
          : "No password yet: mail apps cannot sign in to this mailbox until it has one."
      }
    >
      <form
        onSubmit={submit}
        className="space-y-4"
        aria-label="Set password"
      >
        {set.error && set.error.field !== "password" ? <Alert tone="error">{set.error.message}</Alert> : null}
        {generate.error ? <Alert tone="error">{generate.error.message}</Alert> : null}
        <Input
          label={mailbox.hasPassword ? "New password" : "Password"}
          type={visible ? "text" : "password"}
          autoComplete="new-password"
          value={password}
          onChange={(event) => setPassword(event.target.value)}
          error={set.error?.field === "password" ? set.error.message : null}
          hint="A long phrase is easy to type in a mail app and hard to guess."
          maxLength={1024}
          suffix={
            <Button variant="secondary" onClick={() => setVisible((shown) => !shown)} aria-pressed={visible}>
              {visible ? "Hide" : "Show"}
            </Button>
          }
        />
        <div className="flex flex-col-reverse gap-2 sm:flex-row sm:justify-end">
          <Button
            variant="secondary"
            loading={generate.pending}
            disabled={set.pending}
            onClick={async () => {
              set.setError(null);
              const answer = await generate.run(mailbox.address);
              if (answer) {
                setGenerated(answer.password);
                setPassword("");
                onChanged();
              }
            }}
          >
            {generate.pending ? "Generating…" : "Generate a password"}
          </Button>
          <Button type="submit" loading={set.pending} disabled={password === "" || generate.pending}>
            {set.pending ? "Saving…" : mailbox.hasPassword ? "Change password" : "Set password"}
          </Button>
        </div>
      </form>

      <SecretDialog
        secret={generated}
        title="Your new password"
        label="Generated password"
        copyLabel="Copy password"
        description={`For ${mailbox.address}. It replaces the previous password.`}
        warning="Copy it now: it is shown only once. Mail apps signed in with the old password must be updated."
        onClose={() => setGenerated(null)}
      />
    </Card>
  );
}
