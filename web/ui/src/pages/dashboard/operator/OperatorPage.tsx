import { useState, type ReactNode } from "react";
import type { Account } from "../../../api/account";
import { affiliateApi, formatCents, operatorApi, type PayoutLine, type Review } from "../../../api/affiliates";
import { Alert } from "../../../components/Alert";
import { Button, buttonClasses } from "../../../components/Button";
import { Badge, PageHeader, type BadgeTone } from "../../../components/Card";
import { Input } from "../../../components/Field";
import { Spinner } from "../../../components/Spinner";
import { Table } from "../../../components/Table";
import { formatDate, formatNumber } from "../../../lib/format";
import { useAction, useAsync } from "../../../lib/useAsync";
import { LoadError } from "../LoadError";

const tones: Record<string, BadgeTone> = {
  trial: "info",
  active: "success",
  paused: "warning",
  pending: "info",
  approved: "success",
  rejected: "neutral",
};

function previousMonth(): string {
  const now = new Date();
  const month = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
  return month.toISOString().slice(0, 7);
}

function used(value: number, limit: number | null): string {
  return limit === null ? formatNumber(value) : `${formatNumber(value)} / ${formatNumber(limit)}`;
}

export default function OperatorPage() {
  const operator = useAsync(() => operatorApi.get(), []);
  return (
    <>
      <PageHeader title="Operator" description="Every account on this server, affiliate applications and payouts." />
      {operator.error && !operator.data ? (
        <LoadError error={operator.error} reload={operator.reload} />
      ) : !operator.data ? (
        <div className="flex justify-center py-16 text-zinc-500">
          <Spinner className="size-6" label="Loading" />
        </div>
      ) : !operator.data.operator ? (
        <Alert tone="info">Only the operator of this server sees this page.</Alert>
      ) : (
        <div className="space-y-10">
          <Accounts />
          {operator.data.affiliateProgram ? (
            <>
              <Applications />
              <Payouts />
            </>
          ) : null}
        </div>
      )}
    </>
  );
}

function Section({ id, title, description, children }: { id: string; title: string; description: string; children: ReactNode }) {
  return (
    <section aria-labelledby={id}>
      <h2 id={id} className="text-base font-semibold text-zinc-900 dark:text-white">
        {title}
      </h2>
      <p className="mt-1 mb-4 text-sm text-zinc-600 dark:text-zinc-400">{description}</p>
      {children}
    </section>
  );
}

function Accounts() {
  const accounts = useAsync(() => operatorApi.accounts(), []);
  return (
    <Section id="accounts-heading" title="Accounts" description="Plan, status and this month's usage of each account.">
      {accounts.error ? (
        <LoadError error={accounts.error} reload={accounts.reload} />
      ) : !accounts.data ? (
        <Spinner className="size-5" label="Loading accounts" />
      ) : (
        <Table<Account>
          label="Accounts"
          rows={accounts.data}
          rowKey={(a) => a.name}
          cardTitle={(a) => a.name}
          columns={[
            { header: "Account", cell: (a) => <span className="font-medium">{a.name}</span>, hideOnCard: true },
            { header: "Plan", cell: (a) => a.plan.label },
            { header: "Status", cell: (a) => <Badge tone={tones[a.status]}>{a.status}</Badge> },
            { header: "Emails this month", cell: (a) => used(a.usage.emailsThisMonth, a.plan.emailsPerMonth) },
            { header: "Domains", cell: (a) => used(a.usage.domains, a.plan.domains) },
            { header: "Mailboxes", cell: (a) => used(a.usage.mailboxes, a.plan.mailboxes) },
          ]}
        />
      )}
    </Section>
  );
}

function Applications() {
  const applications = useAsync(() => affiliateApi.applications(), []);
  const review = useAction(async (id: number, decision: "approve" | "reject") => {
    await affiliateApi.review(id, decision);
    await applications.reload();
  });
  return (
    <Section
      id="applications-heading"
      title="Affiliate applications"
      description="Approve an application to give its account a referral link; pending ones first."
    >
      {review.error ? (
        <Alert tone="error" className="mb-4">
          {review.error.message}
        </Alert>
      ) : null}
      {applications.error ? (
        <LoadError error={applications.error} reload={applications.reload} />
      ) : !applications.data ? (
        <Spinner className="size-5" label="Loading applications" />
      ) : applications.data.length === 0 ? (
        <p className="text-sm text-zinc-600 dark:text-zinc-400">No applications yet.</p>
      ) : (
        <Table<Review>
          label="Affiliate applications"
          rows={applications.data}
          rowKey={(r) => String(r.application.id)}
          cardTitle={(r) => r.account}
          columns={[
            {
              header: "Account",
              cell: (r) => (
                <div>
                  <div className="font-medium">{r.account}</div>
                  <div className="text-zinc-600 dark:text-zinc-400">{r.email}</div>
                </div>
              ),
              hideOnCard: true,
            },
            { header: "Website", cell: (r) => <span className="break-all">{r.application.website}</span> },
            { header: "Pitch", cell: (r) => <span className="line-clamp-3">{r.application.pitch}</span> },
            { header: "Applied", cell: (r) => formatDate(r.application.appliedAt) },
            {
              header: "Status",
              cell: (r) => <Badge tone={tones[r.application.status]}>{r.application.status}</Badge>,
            },
            {
              header: "Actions",
              srOnlyHeader: true,
              cell: (r) =>
                r.application.status === "pending" ? (
                  <div className="flex gap-2">
                    <Button size="sm" loading={review.pending} onClick={() => void review.run(r.application.id, "approve")}>
                      Approve<span className="sr-only"> {r.account}</span>
                    </Button>
                    <Button size="sm" variant="secondary" onClick={() => void review.run(r.application.id, "reject")}>
                      Reject<span className="sr-only"> {r.account}</span>
                    </Button>
                  </div>
                ) : null,
            },
          ]}
        />
      )}
    </Section>
  );
}

function Payouts() {
  const [month, setMonth] = useState(previousMonth());
  const payouts = useAsync(() => affiliateApi.payouts(month), [month]);
  const total = (payouts.data ?? []).reduce((sum, line) => sum + line.amountCents, 0);
  return (
    <Section
      id="payouts-heading"
      title="Payouts"
      description="A month's statements close on the 15th of the next; balances of $50 or more are paid then."
    >
      <div className="mb-4 flex flex-wrap items-end gap-3">
        <div className="w-44">
          <Input label="Statement month" type="month" value={month} onChange={(event) => setMonth(event.target.value)} required />
        </div>
        <a className={buttonClasses("secondary")} href={affiliateApi.payoutsCsvUrl(month)} download>
          Export CSV
        </a>
      </div>
      {payouts.error ? (
        <LoadError error={payouts.error} reload={payouts.reload} />
      ) : !payouts.data ? (
        <Spinner className="size-5" label="Loading payouts" />
      ) : payouts.data.length === 0 ? (
        <p className="text-sm text-zinc-600 dark:text-zinc-400">No payouts for {month}.</p>
      ) : (
        <>
          <Table<PayoutLine>
            label={`Payouts for ${month}`}
            rows={payouts.data}
            rowKey={(p) => p.code}
            cardTitle={(p) => p.account}
            columns={[
              { header: "Affiliate", cell: (p) => <span className="font-medium">{p.account}</span>, hideOnCard: true },
              { header: "Email", cell: (p) => p.email },
              { header: "Amount", cell: (p) => formatCents(p.amountCents) },
              { header: "Pay on", cell: (p) => formatDate(p.payableOn) },
              {
                header: "Method",
                cell: (p) =>
                  p.method === "paypal" ? `PayPal ${p.paypalEmail}` : p.method === "bank" ? "Bank transfer (in the CSV)" : (
                    <Badge tone="warning">No method on file</Badge>
                  ),
              },
            ]}
          />
          <p className="mt-3 text-sm font-medium text-zinc-900 dark:text-white">Total {formatCents(total)}</p>
        </>
      )}
    </Section>
  );
}
