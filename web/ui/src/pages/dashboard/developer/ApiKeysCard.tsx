import { useState, type FormEvent } from "react";
import { developerApi, type ApiKey, type CreatedApiKey } from "../../../api/developer";
import { Alert } from "../../../components/Alert";
import { Button } from "../../../components/Button";
import { Badge, Card } from "../../../components/Card";
import { Dialog } from "../../../components/Dialog";
import { Input } from "../../../components/Field";
import { Spinner } from "../../../components/Spinner";
import { Table, type Column } from "../../../components/Table";
import { useToast } from "../../../components/Toast";
import { formatDate, relativeTime } from "../../../lib/format";
import { useAction, useAsync } from "../../../lib/useAsync";
import { SecretDialog } from "../../../components/SecretDialog";

/** The domain's API keys: create (the key is shown once), list, revoke. */
export function ApiKeysCard({ domain, onCreated }: { domain: string; onCreated: (key: CreatedApiKey) => void }) {
  const keys = useAsync(() => developerApi.apiKeys(domain), [domain]);
  const toast = useToast();
  const [creating, setCreating] = useState(false);
  const [name, setName] = useState("");
  const [shown, setShown] = useState<CreatedApiKey | null>(null);
  const [revoking, setRevoking] = useState<ApiKey | null>(null);
  const create = useAction((keyName: string) => developerApi.createApiKey(domain, keyName));
  const revoke = useAction(async (key: ApiKey) => {
    await developerApi.revokeApiKey(domain, key.id);
    return key;
  });

  async function submit(event: FormEvent) {
    event.preventDefault();
    const created = await create.run(name.trim());
    if (created) {
      setCreating(false);
      setShown(created);
      onCreated(created);
      void keys.reload();
    }
  }

  const columns: Column<ApiKey>[] = [
    { header: "Name", hideOnCard: true, cell: (key) => <span className="font-medium">{key.name || "Unnamed key"}</span> },
    { header: "Key", cell: (key) => <code className="font-mono text-[13px]">{key.prefix}…</code> },
    { header: "Created", cell: (key) => formatDate(key.createdAt) },
    {
      header: "Last used",
      cell: (key) =>
        key.revokedAt ? (
          <Badge tone="neutral">Revoked {formatDate(key.revokedAt)}</Badge>
        ) : key.lastUsedAt ? (
          relativeTime(key.lastUsedAt)
        ) : (
          "Never"
        ),
    },
    {
      header: "Actions",
      srOnlyHeader: true,
      className: "text-right",
      cell: (key) =>
        key.revokedAt ? null : (
          <Button variant="ghost" size="sm" className="text-red-700! dark:text-red-400!" onClick={() => setRevoking(key)} aria-label={`Revoke ${key.name ? `${key.name} (${key.prefix}…)` : `${key.prefix}…`}`}>
            Revoke
          </Button>
        ),
    },
  ];

  return (
    <Card
      title="API keys"
      description={`Keys for the /v1 REST API and the SDKs. Each key sees only ${domain}.`}
      actions={
        <Button
          onClick={() => {
            setName("");
            create.setError(null);
            setCreating(true);
          }}
        >
          Create API key
        </Button>
      }
      padded={false}
    >
      <div className="p-4 sm:p-6">
        {keys.error ? (
          <Alert tone="error">{keys.error.message}</Alert>
        ) : !keys.data ? (
          <div className="flex justify-center py-6 text-zinc-500">
            <Spinner label="Loading API keys" />
          </div>
        ) : keys.data.length === 0 ? (
          <p className="text-sm text-zinc-600 dark:text-zinc-400">
            No keys yet. Create one to send mail from your application with the examples below.
          </p>
        ) : (
          <Table label="API keys" columns={columns} rows={keys.data} rowKey={(key) => String(key.id)} cardTitle={(key) => columns[0]!.cell(key)} />
        )}
      </div>

      <Dialog
        open={creating}
        onClose={() => setCreating(false)}
        busy={create.pending}
        title="Create an API key"
        description={`The key can send mail and manage mailboxes on ${domain}.`}
        footer={
          <>
            <Button variant="secondary" onClick={() => setCreating(false)} disabled={create.pending}>
              Cancel
            </Button>
            <Button type="submit" form="create-api-key" loading={create.pending}>
              {create.pending ? "Creating…" : "Create key"}
            </Button>
          </>
        }
      >
        <form id="create-api-key" onSubmit={submit} className="space-y-4">
          {create.error && create.error.field !== "name" ? <Alert tone="error">{create.error.message}</Alert> : null}
          <Input
            label="Name"
            value={name}
            onChange={(event) => setName(event.target.value)}
            placeholder="Production server"
            hint="Where the key is used, so you know which one to revoke later."
            error={create.error?.field === "name" ? create.error.message : null}
            maxLength={100}
            data-autofocus
          />
        </form>
      </Dialog>

      <SecretDialog
        secret={shown?.key ?? null}
        title="Your new API key"
        label="API key"
        description={
          <>
            Use it as <code className="font-mono">Authorization: Bearer {shown?.prefix}…</code> The examples below are
            filled with it while this page stays open.
          </>
        }
        onClose={() => setShown(null)}
      />

      <Dialog
        open={revoking !== null}
        onClose={() => setRevoking(null)}
        busy={revoke.pending}
        title="Revoke this API key?"
        description={
          <>
            Requests with <code className="font-mono">{revoking?.prefix}…</code>
            {revoking?.name ? ` (${revoking.name})` : ""} are refused from now on. This cannot be undone.
          </>
        }
        footer={
          <>
            <Button variant="secondary" onClick={() => setRevoking(null)} disabled={revoke.pending}>
              Cancel
            </Button>
            <Button
              variant="danger"
              loading={revoke.pending}
              onClick={async () => {
                if (!revoking) return;
                const done = await revoke.run(revoking);
                if (done) {
                  setRevoking(null);
                  toast.success("API key revoked.");
                  void keys.reload();
                }
              }}
            >
              {revoke.pending ? "Revoking…" : "Revoke key"}
            </Button>
          </>
        }
      >
        {revoke.error ? <Alert tone="error">{revoke.error.message}</Alert> : null}
      </Dialog>
    </Card>
  );
}
