import { useEffect, useId, useState, type FormEvent, type ReactNode } from "react";
import { relayApi, type DomainRelay as Relay, type RelayChoice, type RelayTls } from "../../../api/relays";
import { Alert } from "../../../components/Alert";
import { Button } from "../../../components/Button";
import { Card } from "../../../components/Card";
import { Input, Select } from "../../../components/Field";
import { PasswordInput } from "../../../components/PasswordInput";
import { Spinner } from "../../../components/Spinner";
import { useToast } from "../../../components/Toast";
import { fieldError, formError } from "../../../lib/errors";
import { useAction, useAsync } from "../../../lib/useAsync";

const FIELDS = ["host", "port", "tls", "username", "password"];
const DEFAULT_PORT: Record<RelayTls, number> = { starttls: 587, implicit: 465 };

/** The domain page's "Outgoing mail" section: through a relay host (smarthost), or directly. */
export function DomainRelay({ name }: { name: string }) {
  const loaded = useAsync(() => relayApi.get(name), [name]);
  return (
    <Card
      title="Outgoing mail"
      description="How mail sent from this domain leaves the server. Many hosting providers block outgoing port 25: a relay host (your provider's smarthost, or a sending service) carries it for you, with the same queue, retries, bounces and DKIM signature."
    >
      {loaded.error && !loaded.data ? (
        <Alert tone="error">{loaded.error.message}</Alert>
      ) : !loaded.data ? (
        <div className="flex justify-center py-6 text-zinc-500">
          <Spinner className="size-5" label="Loading the relay setting" />
        </div>
      ) : (
        <RelayForm relay={loaded.data} onSaved={loaded.setData} />
      )}
    </Card>
  );
}

function RelayForm({ relay, onSaved }: { relay: Relay; onSaved: (relay: Relay) => void }) {
  const toast = useToast();
  const groupId = useId();
  const [choice, setChoice] = useState<RelayChoice>(relay.choice);
  const [host, setHost] = useState(relay.host ?? "");
  const [port, setPort] = useState(relay.port ? String(relay.port) : "");
  const [tls, setTls] = useState<RelayTls>(relay.tls ?? "starttls");
  const [username, setUsername] = useState(relay.username ?? "");
  const [password, setPassword] = useState("");
  const save = useAction(relayApi.set);

  useEffect(() => {
    setChoice(relay.choice);
    setHost(relay.host ?? "");
    setPort(relay.port ? String(relay.port) : "");
    setTls(relay.tls ?? "starttls");
    setUsername(relay.username ?? "");
    setPassword("");
  }, [relay]);

  const changed =
    choice !== relay.choice ||
    (choice === "relay" &&
      (host !== (relay.host ?? "") ||
        port !== (relay.port ? String(relay.port) : "") ||
        tls !== (relay.tls ?? "starttls") ||
        username !== (relay.username ?? "") ||
        password !== ""));

  async function submit(event: FormEvent) {
    event.preventDefault();
    const saved = await save.run(
      relay.domain,
      choice === "relay"
        ? { choice, host, port: port.trim() ? Number(port) : null, tls, username, password }
        : { choice },
    );
    if (saved) {
      onSaved(saved);
      toast.success(
        saved.choice === "relay"
          ? `Mail from ${saved.domain} now goes through ${saved.host}.`
          : saved.choice === "direct"
            ? `Mail from ${saved.domain} now goes directly to recipients' servers.`
            : `${saved.domain} follows the server's setting.`,
      );
    }
  }

  const serverDefault = relay.installationRelay
    ? `Through the server's relay host, ${relay.installationRelay}.`
    : "Directly to each recipient's mail server: the server has no relay host set.";
  const keepsPassword = relay.passwordSet && host === (relay.host ?? "") && username === (relay.username ?? "");

  return (
    <form onSubmit={submit} className="space-y-5" aria-label="Outgoing mail">
      {formError(save.error, FIELDS) ? <Alert tone="error">{formError(save.error, FIELDS)}</Alert> : null}
      <fieldset>
        <legend className="mb-2 text-sm font-medium text-zinc-900 dark:text-zinc-100">Send mail from this domain</legend>
        <div className="space-y-2">
          <Choice group={groupId} value="default" current={choice} onChange={setChoice} title="Server default">
            {serverDefault}
          </Choice>
          <Choice group={groupId} value="relay" current={choice} onChange={setChoice} title="Through a relay host">
            Over TLS with the relay's certificate verified, signing in when you give a username.
          </Choice>
          <Choice group={groupId} value="direct" current={choice} onChange={setChoice} title="Directly">
            To each recipient's mail server on port 25, even when the server has a relay host.
          </Choice>
        </div>
      </fieldset>

      {choice === "relay" ? (
        <div className="grid gap-4 sm:grid-cols-6">
          <Input
            className="sm:col-span-4"
            label="Relay host"
            value={host}
            onChange={(event) => setHost(event.target.value)}
            placeholder="smtp.relay.example"
            autoCapitalize="off"
            autoComplete="off"
            spellCheck={false}
            required
            maxLength={253}
            error={fieldError(save.error, "host")}
          />
          <Input
            className="sm:col-span-2"
            label="Port"
            inputMode="numeric"
            pattern="[0-9]*"
            value={port}
            onChange={(event) => setPort(event.target.value)}
            placeholder={String(DEFAULT_PORT[tls])}
            error={fieldError(save.error, "port")}
            hint={port ? undefined : `Default ${DEFAULT_PORT[tls]}`}
          />
          <Select
            className="sm:col-span-6"
            label="Encryption"
            value={tls}
            onChange={(event) => setTls(event.target.value as RelayTls)}
            error={fieldError(save.error, "tls")}
            hint="TLS is always required: a relay that does not offer it gets no mail, and the message waits in the queue."
          >
            <option value="starttls">STARTTLS (usually port 587)</option>
            <option value="implicit">Implicit TLS (usually port 465)</option>
          </Select>
          <Input
            className="sm:col-span-3"
            label="Username"
            value={username}
            onChange={(event) => setUsername(event.target.value)}
            autoCapitalize="off"
            autoComplete="off"
            spellCheck={false}
            maxLength={255}
            error={fieldError(save.error, "username")}
            hint="Leave empty for a relay that needs no sign-in."
          />
          <div className="sm:col-span-3">
            <PasswordInput
              label="Password"
              value={password}
              onChange={(event) => setPassword(event.target.value)}
              autoComplete="new-password"
              maxLength={1024}
              disabled={!username}
              placeholder={keepsPassword ? "Saved" : ""}
              error={fieldError(save.error, "password")}
              hint={keepsPassword ? "Saved and never shown. Type a new one to replace it." : "Stored encrypted, never shown again."}
            />
          </div>
        </div>
      ) : null}

      <div className="flex flex-wrap items-center justify-end gap-3">
        {changed ? <span className="text-sm text-zinc-600 dark:text-zinc-400">Unsaved changes</span> : null}
        <Button type="submit" loading={save.pending} disabled={!changed}>
          {save.pending ? "Saving…" : "Save"}
        </Button>
      </div>
    </form>
  );
}

function Choice({
  group,
  value,
  current,
  onChange,
  title,
  children,
}: {
  group: string;
  value: RelayChoice;
  current: RelayChoice;
  onChange: (value: RelayChoice) => void;
  title: string;
  children: ReactNode;
}) {
  const selected = value === current;
  const titleId = `${group}-${value}-title`;
  const descriptionId = `${group}-${value}-description`;
  return (
    <label
      className={`flex cursor-pointer gap-3 rounded-lg p-3 ring-1 ring-inset has-[:focus-visible]:outline-2 has-[:focus-visible]:outline-indigo-600 ${
        selected
          ? "bg-indigo-50 ring-indigo-600 dark:bg-indigo-950/40 dark:ring-indigo-400"
          : "ring-zinc-200 hover:bg-zinc-50 dark:ring-zinc-800 dark:hover:bg-zinc-800/50"
      }`}
    >
      <input
        type="radio"
        name={`${group}-choice`}
        value={value}
        checked={selected}
        onChange={() => onChange(value)}
        aria-labelledby={titleId}
        aria-describedby={descriptionId}
        className="mt-0.5 size-4 shrink-0 accent-indigo-600"
      />
      <span className="min-w-0">
        <span id={titleId} className="block text-sm font-medium text-zinc-900 dark:text-white">
          {title}
        </span>
        <span id={descriptionId} className="block text-sm text-zinc-600 dark:text-zinc-400">
          {children}
        </span>
      </span>
    </label>
  );
}
