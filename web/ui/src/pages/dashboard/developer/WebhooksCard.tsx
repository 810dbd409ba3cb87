import { useState, type FormEvent } from "react";
import {
  developerApi,
  WEBHOOK_EVENTS,
  type Webhook,
  type WebhookAttempt,
  type WebhookTestResult,
} from "../../../api/developer";
import { Alert } from "../../../components/Alert";
import { Button } from "../../../components/Button";
import { Badge, Card, type BadgeTone } from "../../../components/Card";
import { Dialog } from "../../../components/Dialog";
import { Checkbox, Input } from "../../../components/Field";
import { Spinner } from "../../../components/Spinner";
import { Table, type Column } from "../../../components/Table";
import { useToast } from "../../../components/Toast";
import { formatDate, formatDateTime } from "../../../lib/format";
import { useAction, useAsync } from "../../../lib/useAsync";
import { SecretDialog } from "../../../components/SecretDialog";

/** "HTTP 200 in 84 ms", "connection refused after 5,000 ms": one line for a test delivery. */
export function describeTest(result: WebhookTestResult): string {
  const took = `${Math.round(result.durationMs).toLocaleString()} ms`;
  const answer = result.statusCode !== null ? `HTTP ${result.statusCode}` : null;
  if (result.ok) return `Delivered: ${answer ?? "accepted"} in ${took}.`;
  const why = [answer, result.error].filter(Boolean).join(", ");
  return `Failed: ${why || "no answer"} after ${took}.`;
}

const attemptTones: Record<string, BadgeTone> = { delivered: "success", pending: "info", failed: "danger" };

function Attempts({ domain, webhook }: { domain: string; webhook: Webhook }) {
  const attempts = useAsync(() => developerApi.webhookAttempts(domain, webhook.id), [domain, webhook.id]);
  const columns: Column<WebhookAttempt>[] = [
    { header: "Event", hideOnCard: true, cell: (item) => <code className="font-mono text-[13px]">{item.event}</code> },
    { header: "Status", cell: (item) => <Badge tone={attemptTones[item.status] ?? "neutral"}>{item.status}</Badge> },
    {
      header: "Answer",
      cell: (item) => (item.statusCode !== null ? `HTTP ${item.statusCode}` : item.error ?? "—"),
    },
    { header: "Attempts", cell: (item) => item.attempts },
    { header: "Last attempt", cell: (item) => formatDateTime(item.lastAttemptAt ?? item.createdAt) },
  ];
  if (attempts.error) return <Alert tone="error">{attempts.error.message}</Alert>;
  if (!attempts.data) return <Spinner label="Loading recent deliveries" />;
  if (attempts.data.length === 0) {
    return <p className="text-sm text-zinc-600 dark:text-zinc-400">No deliveries yet: events are posted here as they happen.</p>;
  }
  return (
    <Table
      label={`Recent deliveries to ${webhook.url}`}
      columns={columns}
      rows={attempts.data}
      rowKey={(item) => String(item.id)}
      cardTitle={(item) => columns[0]!.cell(item)}
    />
  );
}

function WebhookItem({ domain, webhook, onChanged }: { domain: string; webhook: Webhook; onChanged: () => void }) {
  const toast = useToast();
  const [showAttempts, setShowAttempts] = useState(false);
  const [confirm, setConfirm] = useState<"rotate" | "delete" | null>(null);
  const [secret, setSecret] = useState<string | null>(null);
  const test = useAction(() => developerApi.testWebhook(domain, webhook.id));
  const [result, setResult] = useState<WebhookTestResult | null>(null);
  const rotate = useAction(() => developerApi.rotateWebhookSecret(domain, webhook.id));
  const remove = useAction(async () => {
    await developerApi.deleteWebhook(domain, webhook.id);
    return true as const;
  });
  const attemptsId = `webhook-${webhook.id}-attempts`;

  return (
    <li className="py-4 first:pt-0 last:pb-0">
      <div className="flex flex-wrap items-start justify-between gap-3">
        <div className="min-w-0">
          <p className="font-mono text-sm font-medium break-all text-zinc-900 dark:text-white">{webhook.url}</p>
          <p className="mt-1 text-xs text-zinc-600 dark:text-zinc-400">Added {formatDate(webhook.createdAt)}</p>
          <ul className="mt-2 flex flex-wrap gap-1.5" aria-label="Events">
            {webhook.events.map((event) => (
              <li key={event}>
                <Badge>{event}</Badge>
              </li>
            ))}
          </ul>
        </div>
        <div className="flex flex-wrap gap-2">
          <Button
            variant="secondary"
            size="sm"
            loading={test.pending}
            aria-label={`Send test to ${webhook.url}`}
            onClick={async () => {
              setResult(null);
              const answer = await test.run();
              if (answer) setResult(answer);
            }}
          >
            {test.pending ? "Sending…" : "Send test"}
          </Button>
          <Button
            variant="secondary"
            size="sm"
            aria-expanded={showAttempts}
            aria-controls={attemptsId}
            onClick={() => setShowAttempts((open) => !open)}
          >
            {showAttempts ? "Hide deliveries" : "Recent deliveries"}
          </Button>
          <Button variant="ghost" size="sm" onClick={() => setConfirm("rotate")} aria-label={`Rotate secret of ${webhook.url}`}>
            Rotate secret
          </Button>
          <Button
            variant="ghost"
            size="sm"
            className="text-red-700! dark:text-red-400!"
            onClick={() => setConfirm("delete")}
            aria-label={`Delete webhook ${webhook.url}`}
          >
            Delete
          </Button>
        </div>
      </div>

      {test.error ? <Alert tone="error" className="mt-3">{test.error.message}</Alert> : null}
      {result ? (
        <Alert tone={result.ok ? "success" : "error"} className="mt-3">
          {describeTest(result)}
        </Alert>
      ) : null}
      {showAttempts ? (
        <div id={attemptsId} className="mt-4">
          <Attempts domain={domain} webhook={webhook} />
        </div>
      ) : null}

      <Dialog
        open={confirm !== null}
        onClose={() => setConfirm(null)}
        busy={rotate.pending || remove.pending}
        title={confirm === "rotate" ? "Rotate the signing secret?" : "Delete this webhook?"}
        description={
          confirm === "rotate"
            ? "A new secret signs every request from now on; requests signed with the old one stop verifying at your endpoint until you update it."
            : `Nothing more is posted to ${webhook.url}, and deliveries still waiting for it are dropped.`
        }
        footer={
          <>
            <Button variant="secondary" onClick={() => setConfirm(null)} disabled={rotate.pending || remove.pending}>
              Cancel
            </Button>
            {confirm === "rotate" ? (
              <Button
                loading={rotate.pending}
                onClick={async () => {
                  const answer = await rotate.run();
                  if (answer) {
                    setConfirm(null);
                    setSecret(answer.secret);
                  }
                }}
              >
                {rotate.pending ? "Rotating…" : "Rotate secret"}
              </Button>
            ) : (
              <Button
                variant="danger"
                loading={remove.pending}
                onClick={async () => {
                  if (await remove.run()) {
                    setConfirm(null);
                    toast.success("Webhook deleted.");
                    onChanged();
                  }
                }}
              >
                {remove.pending ? "Deleting…" : "Delete webhook"}
              </Button>
            )}
          </>
        }
      >
        {rotate.error ? <Alert tone="error">{rotate.error.message}</Alert> : null}
        {remove.error ? <Alert tone="error">{remove.error.message}</Alert> : null}
      </Dialog>

      <SecretDialog
        secret={secret}
        title="The new signing secret"
        label="signing secret"
        description={`Verify the Mailmark-Signature header of requests to ${webhook.url} with it.`}
        onClose={() => setSecret(null)}
      />
    </li>
  );
}

/** The domain's webhooks: create (the secret is shown once), test, recent deliveries, rotate, delete. */
export function WebhooksCard({ domain }: { domain: string }) {
  const hooks = useAsync(() => developerApi.webhooks(domain), [domain]);
  const [creating, setCreating] = useState(false);
  const [url, setUrl] = useState("");
  const [events, setEvents] = useState<string[]>(WEBHOOK_EVENTS.map((event) => event.name));
  const [secret, setSecret] = useState<string | null>(null);
  const create = useAction(() => developerApi.createWebhook(domain, url.trim(), events));

  async function submit(event: FormEvent) {
    event.preventDefault();
    const created = await create.run();
    if (created) {
      setCreating(false);
      setSecret(created.secret);
      void hooks.reload();
    }
  }

  function toggle(name: string, on: boolean) {
    setEvents((current) =>
      WEBHOOK_EVENTS.map((event) => event.name).filter((event) => (event === name ? on : current.includes(event))),
    );
  }

  return (
    <Card
      title="Webhooks"
      description="The domain's events, posted to your HTTPS endpoint and signed with a secret."
      actions={
        <Button
          onClick={() => {
            setUrl("");
            setEvents(WEBHOOK_EVENTS.map((event) => event.name));
            create.setError(null);
            setCreating(true);
          }}
        >
          Add webhook
        </Button>
      }
    >
      {hooks.error ? (
        <Alert tone="error">{hooks.error.message}</Alert>
      ) : !hooks.data ? (
        <div className="flex justify-center py-6 text-zinc-500">
          <Spinner label="Loading webhooks" />
        </div>
      ) : hooks.data.length === 0 ? (
        <p className="text-sm text-zinc-600 dark:text-zinc-400">
          No webhooks yet. Add one to hear about deliveries, bounces and incoming mail as they happen.
        </p>
      ) : (
        <ul className="divide-y divide-zinc-200 dark:divide-zinc-800" aria-label="Webhooks">
          {hooks.data.map((webhook) => (
            <WebhookItem key={webhook.id} domain={domain} webhook={webhook} onChanged={() => void hooks.reload()} />
          ))}
        </ul>
      )}

      <Dialog
        open={creating}
        onClose={() => setCreating(false)}
        busy={create.pending}
        size="lg"
        title="Add a webhook"
        description="The endpoint must be reachable over HTTPS from this server and answer 2xx."
        footer={
          <>
            <Button variant="secondary" onClick={() => setCreating(false)} disabled={create.pending}>
              Cancel
            </Button>
            <Button type="submit" form="create-webhook" loading={create.pending} disabled={url.trim() === "" || events.length === 0}>
              {create.pending ? "Adding…" : "Add webhook"}
            </Button>
          </>
        }
      >
        <form id="create-webhook" onSubmit={submit} className="space-y-4" noValidate>
          {create.error && !["url", "events"].includes(create.error.field ?? "") ? (
            <Alert tone="error">{create.error.message}</Alert>
          ) : null}
          <Input
            label="Endpoint URL"
            type="url"
            inputMode="url"
            value={url}
            onChange={(event) => setUrl(event.target.value)}
            placeholder="https://example.com/hooks/mailmark"
            error={create.error?.field === "url" ? create.error.message : null}
            autoComplete="off"
            spellCheck={false}
            maxLength={2048}
            data-autofocus
          />
          <fieldset>
            <legend className="text-sm font-medium text-zinc-900 dark:text-zinc-100">Events</legend>
            {create.error?.field === "events" ? (
              <p className="mt-1 text-sm text-red-700 dark:text-red-400">{create.error.message}</p>
            ) : events.length === 0 ? (
              <p className="mt-1 text-sm text-red-700 dark:text-red-400">Choose at least one event.</p>
            ) : null}
            <div className="mt-2 grid gap-3 sm:grid-cols-2">
              {WEBHOOK_EVENTS.map((event) => (
                <Checkbox
                  key={event.name}
                  label={<code className="font-mono">{event.name}</code>}
                  hint={event.description}
                  checked={events.includes(event.name)}
                  onChange={(change) => toggle(event.name, change.target.checked)}
                />
              ))}
            </div>
          </fieldset>
        </form>
      </Dialog>

      <SecretDialog
        secret={secret}
        title="Webhook added"
        label="signing secret"
        description="Each request carries a Mailmark-Signature header: an HMAC-SHA256 of the timestamp and body made with this secret. Verify it before trusting a request."
        onClose={() => setSecret(null)}
      />
    </Card>
  );
}
