import { useState } from "react";
import { useSearchParams } from "react-router";
import type { CreatedApiKey } from "../../../api/developer";
import { domainsApi } from "../../../api/domains";
import { mailboxesApi } from "../../../api/mailboxes";
import { Alert } from "../../../components/Alert";
import { ButtonLink } from "../../../components/Button";
import { PageHeader } from "../../../components/Card";
import { EmptyState } from "../../../components/EmptyState";
import { Select } from "../../../components/Field";
import { Spinner } from "../../../components/Spinner";
import { useAsync } from "../../../lib/useAsync";
import { ApiExplorer } from "./ApiExplorer";
import { ApiKeysCard } from "./ApiKeysCard";
import { KEY_PLACEHOLDER, sampleSender } from "./snippets";
import { WebhooksCard } from "./WebhooksCard";

export default function DeveloperPage() {
  const domains = useAsync(() => domainsApi.list(), []);
  const [params, setParams] = useSearchParams();
  const names = (domains.data ?? []).map((domain) => domain.name);
  const wanted = params.get("domain");
  const domain = wanted && names.includes(wanted) ? wanted : (names[0] ?? null);

  return (
    <>
      <PageHeader
        title="Developer"
        description="API keys, webhooks and ready-to-run examples for sending from your own code."
      />
      {domains.error ? (
        <Alert tone="error">{domains.error.message}</Alert>
      ) : !domains.data ? (
        <div className="flex justify-center py-16 text-zinc-500">
          <Spinner className="size-6" label="Loading domains" />
        </div>
      ) : domain === null ? (
        <EmptyState title="Add a domain first" action={<ButtonLink to="/dashboard/domains">Go to Domains</ButtonLink>}>
          API keys and webhooks belong to a domain: each key sends only from its domain's mailboxes.
        </EmptyState>
      ) : (
        <>
          <div className="mb-6 max-w-sm">
            <Select
              label="Domain"
              value={domain}
              onChange={(event) => setParams({ domain: event.target.value }, { replace: true })}
              hint="Keys, webhooks and examples are per domain."
            >
              {names.map((name) => (
                <option key={name} value={name}>
                  {name}
                </option>
              ))}
            </Select>
          </div>
          <DomainTools key={domain} domain={domain} />
        </>
      )}
    </>
  );
}

function DomainTools({ domain }: { domain: string }) {
  const [created, setCreated] = useState<CreatedApiKey | null>(null);
  const mailboxes = useAsync(() => mailboxesApi.list(domain), [domain]);
  return (
    <div className="space-y-6">
      <ApiKeysCard domain={domain} onCreated={setCreated} />
      <ApiExplorer
        baseUrl={window.location.origin}
        from={sampleSender(domain, mailboxes.data ?? [])}
        apiKey={created?.key ?? KEY_PLACEHOLDER}
        keyIsReal={created !== null}
      />
      <WebhooksCard domain={domain} />
    </div>
  );
}
