import type { ReactNode } from "react";
import { Link } from "react-router";
import { useAccount } from "../account/AccountContext";
import type { Account } from "../api/account";
import { api, seg } from "../api/client";
import { domainsApi, type DomainSummary } from "../api/domains";
import { mailboxesApi, type Mailbox } from "../api/mailboxes";
import { useAuth, useUser } from "../auth/AuthContext";
import { Alert } from "../components/Alert";
import { Button, ButtonLink } from "../components/Button";
import { Badge, Card, PageHeader } from "../components/Card";
import { EmptyState } from "../components/EmptyState";
import { Spinner } from "../components/Spinner";
import { UsageMeter } from "../components/UsageMeter";
import { formatDate, formatNumber, plural } from "../lib/format";
import { useAsync } from "../lib/useAsync";

export default function OverviewPage() {
  const user = useUser();
  const { canManage } = useAuth();
  const account = useAccount();
  const firstName = user.name.trim().split(/\s+/)[0] || user.name;

  return (
    <>
      <PageHeader
        title="Overview"
        description={
          firstName
            ? `Hello, ${firstName}. Here is ${user.accountName} at a glance.`
            : `Here is ${user.accountName} at a glance.`
        }
      />
      {account.error && !account.data ? (
        <Alert
          tone="error"
          title="The account summary could not be loaded"
          action={
            <Button size="sm" variant="secondary" onClick={() => void account.reload()}>
              Try again
            </Button>
          }
        >
          {account.error.message}
        </Alert>
      ) : null}
      {account.data ? (
        <div className="space-y-6">
          {account.data.notices.map((notice) => (
            <Alert key={notice} tone="warning">
              {notice}
            </Alert>
          ))}
          <PlanCards account={account.data} />
          {canManage ? <ManagerOverview account={account.data} /> : <MemberOverview />}
        </div>
      ) : account.loading ? (
        <div className="flex justify-center py-16 text-zinc-500">
          <Spinner className="size-6" label="Loading the overview" />
        </div>
      ) : null}
    </>
  );
}

function PlanCards({ account }: { account: Account }) {
  const status =
    account.status === "paused" ? (
      <Badge tone="danger">Paused</Badge>
    ) : account.status === "trial" ? (
      <Badge tone="info">
        Trial{account.trialDaysLeft !== null ? ` · ${plural(account.trialDaysLeft, "day")} left` : ""}
      </Badge>
    ) : (
      <Badge tone="success">Active</Badge>
    );
  return (
    <section aria-labelledby="plan-heading" className="grid grid-cols-2 gap-3 sm:gap-4 lg:grid-cols-4">
      <h2 id="plan-heading" className="sr-only">
        Plan and usage
      </h2>
      <div className="col-span-2 rounded-xl bg-white p-4 shadow-sm ring-1 ring-zinc-200 sm:p-5 lg:col-span-1 dark:bg-zinc-900 dark:ring-zinc-800">
        <div className="flex items-baseline justify-between gap-2">
          <p className="text-sm font-medium text-zinc-600 dark:text-zinc-400">Plan</p>
          {status}
        </div>
        <p className="mt-1 text-2xl font-semibold tracking-tight text-zinc-900 dark:text-white">{account.plan.label}</p>
        <p className="mt-1 text-sm text-zinc-600 dark:text-zinc-400">
          {account.status === "trial" && account.trialEndsAt
            ? `Trial ends ${formatDate(account.trialEndsAt)}`
            : account.status === "paused"
              ? "Select a plan to resume sending"
              : planSummary(account)}
        </p>
      </div>
      <Stat>
        <UsageMeter label="Domains" used={account.usage.domains} limit={account.plan.domains} />
      </Stat>
      <Stat>
        <UsageMeter label="Mailboxes" used={account.usage.mailboxes} limit={account.plan.mailboxes} />
      </Stat>
      <Stat className="col-span-2 lg:col-span-1">
        <UsageMeter label="Emails this month" used={account.usage.emailsThisMonth} limit={account.plan.emailsPerMonth} />
      </Stat>
    </section>
  );
}

function planSummary(account: Account): string {
  const { emailsPerMonth } = account.plan;
  return emailsPerMonth === null ? "No sending limit" : `Up to ${formatNumber(emailsPerMonth)} emails a month`;
}

function Stat({ children, className = "" }: { children: ReactNode; className?: string }) {
  return (
    <div className={`rounded-xl bg-white p-4 shadow-sm ring-1 ring-zinc-200 sm:p-5 dark:bg-zinc-900 dark:ring-zinc-800 ${className}`}>
      {children}
    </div>
  );
}

type Progress = { domains: DomainSummary[]; mailboxes: number; activeKeys: number };

async function loadProgress(): Promise<Progress> {
  const [domains, mailboxes] = await Promise.all([domainsApi.list(), mailboxesApi.list()]);
  // Keys are per domain: a few domains are looked at, enough to tell whether any key exists.
  const keyLists = await Promise.all(
    domains
      .slice(0, 10)
      .map((domain) =>
        api.get<{ revokedAt: string | null }[]>(`/api/domains/${seg(domain.name)}/api-keys`).catch(() => []),
      ),
  );
  const activeKeys = keyLists.flat().filter((key) => !key.revokedAt).length;
  return { domains, mailboxes: mailboxes.length, activeKeys };
}

function ManagerOverview({ account }: { account: Account }) {
  const progress = useAsync(loadProgress, [account.usage.domains, account.usage.mailboxes]);
  if (progress.error && !progress.data) {
    return <Alert tone="error">{progress.error.message}</Alert>;
  }
  if (!progress.data) {
    return (
      <div className="flex justify-center py-10 text-zinc-500">
        <Spinner className="size-6" label="Loading your setup progress" />
      </div>
    );
  }
  const { domains, mailboxes, activeKeys } = progress.data;
  const unverified = domains.find((domain) => !domain.verified);
  const verified = domains.some((domain) => domain.verified);
  const steps: Step[] = [
    {
      title: "Add a domain",
      body: "Connect a domain you own, like yourcompany.com.",
      done: domains.length > 0,
      to: "/dashboard/domains",
      action: "Add a domain",
    },
    {
      title: "Publish the DNS records",
      body: "Copy the MX, SPF, DKIM and DMARC records to your DNS provider; each turns green once it is found.",
      done: verified,
      to: unverified ? `/dashboard/domains/${encodeURIComponent(unverified.name)}` : "/dashboard/domains",
      action: "Show the records",
    },
    {
      title: "Create a mailbox",
      body: "An address like hello@ or support@ on your domain, with a password for mail apps.",
      done: mailboxes > 0,
      to: "/dashboard/mailboxes",
      action: "Create a mailbox",
    },
    {
      title: "Create an API key",
      body: "Send email from your code with the REST API or the mailmark-sdk package.",
      done: activeKeys > 0,
      to: "/dashboard/developer",
      action: "Create a key",
    },
  ];
  const remaining = steps.filter((step) => !step.done).length;

  return (
    <div className="grid items-start gap-6 lg:grid-cols-5 [&>*]:min-w-0">
      <Card
        className="lg:col-span-3"
        title="Next steps"
        description={remaining === 0 ? "Everything is set up. Nice work." : `${plural(remaining, "step")} left to start sending.`}
        padded={false}
      >
        <ol className="divide-y divide-zinc-100 dark:divide-zinc-800">
          {steps.map((step, index) => (
            <StepRow key={step.title} step={step} number={index + 1} current={steps.findIndex((s) => !s.done) === index} />
          ))}
        </ol>
      </Card>
      <Card
        className="lg:col-span-2"
        title="Domains"
        actions={
          domains.length > 0 ? (
            <ButtonLink to="/dashboard/domains" variant="secondary" size="sm">
              View all
            </ButtonLink>
          ) : null
        }
        padded={domains.length === 0}
      >
        {domains.length === 0 ? (
          <div className="space-y-4">
            <p className="text-sm text-zinc-600 dark:text-zinc-400">
              No domains yet. Add the domain you send from; mailboxes and API keys belong to a domain.
            </p>
            <ButtonLink to="/dashboard/domains" variant="secondary" size="sm">
              Add a domain
            </ButtonLink>
          </div>
        ) : (
          <ul className="divide-y divide-zinc-100 dark:divide-zinc-800">
            {domains.slice(0, 6).map((domain) => (
              <li key={domain.name}>
                <Link
                  to={`/dashboard/domains/${encodeURIComponent(domain.name)}`}
                  className="flex items-center justify-between gap-3 px-4 py-3 hover:bg-zinc-50 sm:px-6 dark:hover:bg-zinc-800/50"
                >
                  <span className="min-w-0">
                    <span className="block truncate text-sm font-medium text-zinc-900 dark:text-white">{domain.name}</span>
                    <span className="block text-xs text-zinc-600 dark:text-zinc-400">{plural(domain.mailboxCount, "mailbox", "mailboxes")}</span>
                  </span>
                  {domain.verified ? <Badge tone="success">Verified</Badge> : <Badge tone="warning">Needs DNS</Badge>}
                </Link>
              </li>
            ))}
          </ul>
        )}
      </Card>
    </div>
  );
}

type Step = { title: string; body: string; done: boolean; to: string; action: string };

function StepRow({ step, number, current }: { step: Step; number: number; current: boolean }) {
  return (
    <li className="flex gap-4 px-4 py-4 sm:px-6">
      <span
        className={`flex size-7 shrink-0 items-center justify-center rounded-full text-sm font-semibold ${
          step.done
            ? "bg-emerald-600 text-white"
            : current
              ? "bg-indigo-600 text-white"
              : "bg-zinc-100 text-zinc-600 ring-1 ring-zinc-300 ring-inset dark:bg-zinc-800 dark:text-zinc-300 dark:ring-zinc-700"
        }`}
        aria-hidden="true"
      >
        {step.done ? (
          <svg viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="3" className="size-4">
            <path d="m5 12 5 5L20 7" strokeLinecap="round" strokeLinejoin="round" />
          </svg>
        ) : (
          number
        )}
      </span>
      {/* On a phone the action goes under its text, which would otherwise wrap every few words. */}
      <div className="flex min-w-0 flex-1 flex-col items-start gap-3 sm:flex-row sm:items-center">
        <div className="min-w-0 flex-1">
          <p className={`text-sm font-medium ${step.done ? "text-zinc-500 line-through dark:text-zinc-400" : "text-zinc-900 dark:text-white"}`}>
            {step.title}
            <span className="sr-only">{step.done ? " (done)" : " (to do)"}</span>
          </p>
          <p className="mt-0.5 text-sm text-zinc-600 dark:text-zinc-400">{step.body}</p>
        </div>
        {!step.done ? (
          <ButtonLink to={step.to} size="sm" variant={current ? "primary" : "secondary"} className="shrink-0">
            {step.action}
          </ButtonLink>
        ) : null}
      </div>
    </li>
  );
}

function MemberOverview() {
  const mailboxes = useAsync(() => mailboxesApi.list(), []);
  if (mailboxes.error && !mailboxes.data) return <Alert tone="error">{mailboxes.error.message}</Alert>;
  if (!mailboxes.data) {
    return (
      <div className="flex justify-center py-10 text-zinc-500">
        <Spinner className="size-6" label="Loading your mailboxes" />
      </div>
    );
  }
  if (mailboxes.data.length === 0) {
    return (
      <EmptyState title="No mailboxes assigned to you yet">
        An owner or admin of your team assigns mailboxes to members. Ask them to give you one; it shows up here.
      </EmptyState>
    );
  }
  return (
    <Card title="Your mailboxes" padded={false}>
      <ul className="divide-y divide-zinc-100 dark:divide-zinc-800">
        {mailboxes.data.map((mailbox: Mailbox) => (
          <li key={mailbox.address}>
            <Link
              to={`/dashboard/mailboxes/${encodeURIComponent(mailbox.address)}`}
              className="flex items-center justify-between gap-3 px-4 py-3 hover:bg-zinc-50 sm:px-6 dark:hover:bg-zinc-800/50"
            >
              <span className="min-w-0">
                <span className="block truncate text-sm font-medium text-zinc-900 dark:text-white">{mailbox.address}</span>
                <span className="block truncate text-xs text-zinc-600 dark:text-zinc-400">{mailbox.displayName || "No display name"}</span>
              </span>
              {mailbox.hasPassword ? <Badge tone="success">Ready for mail apps</Badge> : <Badge tone="warning">No password</Badge>}
            </Link>
          </li>
        ))}
      </ul>
    </Card>
  );
}
