import { useState, type ReactNode } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { domainApi, type DomainDetail } from "../../../api/domains";
import { useAccount } from "../../../account/AccountContext";
import { Alert } from "../../../components/Alert";
import { Button, ButtonLink, buttonClasses } from "../../../components/Button";
import { Card, PageHeader } from "../../../components/Card";
import { ConfirmTyped } from "../../../components/ConfirmTyped";
import { Dialog } from "../../../components/Dialog";
import { Spinner } from "../../../components/Spinner";
import { useToast } from "../../../components/Toast";
import { formatDate, formatDateTime, plural, relativeTime } from "../../../lib/format";
import { useAction, useAsync } from "../../../lib/useAsync";
import { LoadError } from "../LoadError";
import { DomainRelay } from "./DomainRelay";
import { DomainAddresses } from "./DomainAddresses";
import { DomainReports } from "./DomainReports";
import { DomainStatusBadge } from "./DomainStatusBadge";
import { usePollWhile } from "./poll";
import { RecordTable } from "./RecordTable";
import { groupRecords, requiredProgress } from "./records";

/**
 * While a domain waits for its DNS and the page is in view, it checks the records this often, so
 * rows turn OK as the records propagate. (The server's own re-checks back off over hours, for
 * domains nobody is watching.)
 */
export const POLL_INTERVAL_MS = 10_000;

export default function DomainPage() {
  const { name = "" } = useParams();
  const detail = useAsync(() => domainApi.get(name), [name]);

  const back = (
    <Link to="/dashboard/domains" className="font-medium text-indigo-700 hover:underline dark:text-indigo-300">
      ← Domains
    </Link>
  );

  if (detail.error && !detail.data) {
    return (
      <>
        <PageHeader title={name} back={back} />
        <LoadError error={detail.error} reload={detail.reload} />
      </>
    );
  }
  if (!detail.data) {
    return (
      <>
        <PageHeader title={name} back={back} />
        <div className="flex justify-center py-16 text-zinc-500">
          <Spinner className="size-6" label="Loading the domain" />
        </div>
      </>
    );
  }
  return <DomainView domain={detail.data} back={back} replace={detail.setData} />;
}

function DomainView({
  domain,
  back,
  replace,
}: {
  domain: DomainDetail;
  back: ReactNode;
  replace: (domain: DomainDetail) => void;
}) {
  const navigate = useNavigate();
  const toast = useToast();
  const account = useAccount();
  const [rotating, setRotating] = useState(false);
  const [deleting, setDeleting] = useState(false);

  const verify = useAction(domainApi.verify);
  const rotate = useAction(domainApi.rotateDkim);
  const [polling, setPolling] = useState(false);

  function checked(fresh: DomainDetail) {
    replace(fresh);
    if (fresh.verified && !domain.verified) toast.success(`${fresh.name} is verified.`);
  }

  // A quiet check now (what the page opened on may be hours old) and every few seconds until
  // verified; a failed one is simply tried again.
  usePollWhile(
    !domain.verified,
    POLL_INTERVAL_MS,
    async () => {
      setPolling(true);
      try {
        checked(await domainApi.verify(domain.name));
      } finally {
        setPolling(false);
      }
    },
    { immediately: true },
  );

  async function checkNow() {
    const fresh = await verify.run(domain.name);
    if (fresh) checked(fresh);
  }

  async function rotateKeys() {
    const fresh = await rotate.run(domain.name);
    if (fresh) {
      replace(fresh);
      setRotating(false);
      toast.success("New DKIM keys created. Publish their records to start using them.");
    }
  }

  const { required, recommended } = groupRecords(domain.records);
  const progress = requiredProgress(domain.records);
  const checkedYet = domain.records.some((record) => record.status !== "unchecked");
  const { contains } = domain;

  return (
    <>
      <PageHeader
        back={back}
        title={domain.name}
        description={
          <>
            Added {formatDate(domain.createdAt)} ·{" "}
            {domain.lastCheckedAt ? (
              <time dateTime={domain.lastCheckedAt} title={formatDateTime(domain.lastCheckedAt)}>
                DNS checked {relativeTime(domain.lastCheckedAt)}
              </time>
            ) : (
              "DNS not checked yet"
            )}
          </>
        }
        actions={
          <>
            <a href={domainApi.zoneUrl(domain.name)} download className={buttonClasses("secondary")}>
              Download zone file
            </a>
            <Button onClick={() => void checkNow()} loading={verify.pending}>
              {verify.pending ? "Checking…" : "Check now"}
            </Button>
          </>
        }
      />

      <div className="space-y-6">
        {verify.error ? <Alert tone="error">{verify.error.message}</Alert> : null}

        <section aria-label="Verification" className="rounded-xl bg-white p-4 shadow-sm ring-1 ring-zinc-200 sm:p-6 dark:bg-zinc-900 dark:ring-zinc-800">
          <div className="flex flex-wrap items-center gap-3">
            <DomainStatusBadge verified={domain.verified} />
            <p className="text-sm font-medium text-zinc-900 dark:text-white" aria-live="polite">
              {checkedYet
                ? `${progress.found} of ${plural(progress.total, "required record")} found`
                : "Records not checked yet"}
            </p>
            {polling || verify.pending ? (
              <span className="inline-flex items-center gap-1.5 text-sm text-zinc-600 dark:text-zinc-400">
                <Spinner className="size-3.5" /> Checking DNS…
              </span>
            ) : null}
          </div>
          {checkedYet ? (
            <div
              className="mt-3 h-2 overflow-hidden rounded-full bg-zinc-200 dark:bg-zinc-800"
              role="progressbar"
              aria-label="Required records found"
              aria-valuemin={0}
              aria-valuemax={progress.total}
              aria-valuenow={progress.found}
            >
              <div
                className={`h-full rounded-full transition-[width] ${domain.verified ? "bg-emerald-500" : "bg-indigo-500"}`}
                style={{ width: `${progress.total ? (100 * progress.found) / progress.total : 0}%` }}
              />
            </div>
          ) : null}
          <p className="mt-3 text-sm text-zinc-600 dark:text-zinc-400">
            {domain.verified
              ? checkedYet
                ? "Mail for this domain is delivered to its mailboxes and what you send is signed with its DKIM key. The recommended records below improve delivery and client setup."
                : "The domain was added as trusted, without a DNS check. Check now to compare the records below with what the DNS says."
              : "Add the required records below at your DNS provider. This page checks them every 10 seconds while it is open, and the server keeps checking now and then until the domain verifies. Changes usually show within minutes, but can take up to 48 hours."}
          </p>
          {domain.verified ? (
            <div className="mt-4">
              <ButtonLink to={`/dashboard/mailboxes?create=${encodeURIComponent(domain.name)}`} variant="secondary">
                Add a mailbox
              </ButtonLink>
            </div>
          ) : null}
        </section>

        <Card
          title="Required records"
          description="Most DNS providers want the short host shown in bold (@ means the domain itself); the full name is under it."
          padded
        >
          <RecordTable records={required} label="Required records" />
        </Card>

        {recommended.length > 0 ? (
          <Card
            title="Recommended records"
            description="Not needed to verify the domain: they add TLS reporting and enforcement, and let mail apps find their settings by themselves."
          >
            <RecordTable records={recommended} label="Recommended records" />
          </Card>
        ) : null}

        {domain.aliasOf ? (
          <Card
            title="Alias domain"
            description={
              <>
                Every address at {domain.name} delivers as the same address at{" "}
                <Link
                  to={`/dashboard/domains/${encodeURIComponent(domain.aliasOf)}`}
                  className="font-medium text-indigo-700 hover:underline dark:text-indigo-300"
                >
                  {domain.aliasOf}
                </Link>
                : its mailboxes, aliases and catch-all apply here too.
              </>
            }
          />
        ) : (
          <>
            {domain.aliasDomains.length > 0 ? (
              <Alert tone="info">
                Also receiving mail as {domain.aliasDomains.join(", ")}: every address there delivers as the same
                address here.
              </Alert>
            ) : null}
            <DomainAddresses name={domain.name} />
          </>
        )}

        <DomainReports name={domain.name} />

        <DomainRelay name={domain.name} />

        <Card
          title="DKIM signing key"
          description="Receivers check each message's signature against the key in your DNS. Rotate it if it may have leaked."
          actions={
            <Button variant="secondary" onClick={() => setRotating(true)}>
              Rotate DKIM key
            </Button>
          }
        />

        <Card
          title="Delete domain"
          description="Removes the domain with all its mailboxes, their mail, its API keys and its webhooks."
          actions={
            <Button variant="danger" onClick={() => setDeleting(true)}>
              Delete domain
            </Button>
          }
        />
      </div>

      <Dialog
        open={rotating}
        onClose={() => setRotating(false)}
        busy={rotate.pending}
        title="Rotate the DKIM key?"
        footer={
          <>
            <Button variant="secondary" onClick={() => setRotating(false)} disabled={rotate.pending}>
              Cancel
            </Button>
            <Button onClick={() => void rotateKeys()} loading={rotate.pending}>
              {rotate.pending ? "Rotating…" : "Create new keys"}
            </Button>
          </>
        }
      >
        <div className="space-y-3 text-sm text-zinc-700 dark:text-zinc-300">
          {rotate.error ? <Alert tone="error">{rotate.error.message}</Alert> : null}
          <p>Mailmark creates new signing keys and adds their DKIM records to the table, next to the current ones.</p>
          <p>
            Nothing changes for your mail yet: it keeps being signed with the current key until a check finds the new
            records in your DNS. Then the new keys sign, and the old records can be removed from your DNS.
          </p>
        </div>
      </Dialog>

      <ConfirmTyped
        open={deleting}
        onClose={() => setDeleting(false)}
        title={`Delete ${domain.name}?`}
        confirmText={domain.name}
        actionLabel="Delete domain"
        description={
          <>
            <p>This permanently deletes, and cannot be undone:</p>
            <ul className="mt-2 list-disc space-y-0.5 pl-5">
              <li>
                {plural(contains.mailboxes, "mailbox", "mailboxes")} with {plural(contains.messages, "message")} in
                them
              </li>
              <li>{plural(contains.apiKeys, "API key")}: apps using them stop working</li>
              <li>{plural(contains.webhooks, "webhook")}</li>
              {contains.queued > 0 ? (
                <li>{plural(contains.queued, "outgoing delivery", "outgoing deliveries")} not sent yet</li>
              ) : null}
            </ul>
            <p className="mt-2">Mail sent to addresses at {domain.name} will be refused afterwards.</p>
          </>
        }
        onConfirm={async () => {
          await domainApi.remove(domain.name);
          toast.success(`${domain.name} deleted.`);
          void account.reload();
          navigate("/dashboard/domains", { replace: true });
        }}
      />
    </>
  );
}

