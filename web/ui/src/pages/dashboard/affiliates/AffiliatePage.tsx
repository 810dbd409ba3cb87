import { useState, type FormEvent } from "react";
import {
  affiliateApi,
  formatCents,
  type AffiliateDashboard,
  type AffiliateState,
  type Application,
} from "../../../api/affiliates";
import { useAuth } from "../../../auth/AuthContext";
import { Alert } from "../../../components/Alert";
import { Button } from "../../../components/Button";
import { Badge, Card, PageHeader } from "../../../components/Card";
import { CopyButton } from "../../../components/CopyButton";
import { Input } from "../../../components/Field";
import { Spinner } from "../../../components/Spinner";
import { Table } from "../../../components/Table";
import { useToast } from "../../../components/Toast";
import { formatDate, formatNumber } from "../../../lib/format";
import { useAction, useAsync } from "../../../lib/useAsync";
import { LoadError } from "../LoadError";

export default function AffiliatePage() {
  const state = useAsync(() => affiliateApi.get(), []);
  return (
    <>
      <PageHeader
        title="Affiliate program"
        description="Earn 30% of every payment by the customers you refer, every month, for the life of their account."
      />
      {state.error && !state.data ? (
        <LoadError error={state.error} reload={state.reload} />
      ) : !state.data ? (
        <div className="flex justify-center py-16 text-zinc-500">
          <Spinner className="size-6" label="Loading the affiliate program" />
        </div>
      ) : state.data.dashboard ? (
        <Dashboard dashboard={state.data.dashboard} onChanged={(next) => state.setData(next)} />
      ) : (
        <ApplicationPanel application={state.data.application} onChanged={(next) => state.setData(next)} />
      )}
    </>
  );
}

function ApplicationPanel({
  application,
  onChanged,
}: {
  application: Application | null;
  onChanged: (state: AffiliateState) => void;
}) {
  const { canManage } = useAuth();
  const [website, setWebsite] = useState("");
  const [pitch, setPitch] = useState("");
  const apply = useAction(affiliateApi.apply);

  async function submit(event: FormEvent) {
    event.preventDefault();
    const next = await apply.run(website.trim(), pitch.trim());
    if (next) onChanged(next);
  }

  if (application?.status === "pending") {
    return (
      <Card title="Application received" actions={<Badge tone="info">In review</Badge>}>
        <p className="text-sm text-zinc-700 dark:text-zinc-300">
          We review applications within 48 hours. Once approved, your referral link and dashboard appear here.
        </p>
        <dl className="mt-4 grid gap-3 text-sm sm:grid-cols-2">
          <div>
            <dt className="text-zinc-600 dark:text-zinc-400">Website</dt>
            <dd className="mt-1 font-medium break-all text-zinc-900 dark:text-white">{application.website}</dd>
          </div>
          <div>
            <dt className="text-zinc-600 dark:text-zinc-400">Applied</dt>
            <dd className="mt-1 font-medium text-zinc-900 dark:text-white">{formatDate(application.appliedAt)}</dd>
          </div>
        </dl>
      </Card>
    );
  }
  return (
    <div className="grid gap-6 lg:grid-cols-3">
      <Card title="How it works" className="lg:col-span-1">
        <ul className="space-y-3 text-sm text-zinc-700 dark:text-zinc-300">
          <li>30% of every payment: $3 a month for Starter, $15 for Pro, $30 for Business.</li>
          <li>A 90-day referral cookie: the first link a visitor follows counts.</li>
          <li>Paid on the 15th for the month before, by PayPal or bank transfer, from $50 (smaller balances roll over).</li>
          <li>Paid search on branded terms ("Mailmark") is not allowed.</li>
        </ul>
      </Card>
      <Card
        title={application?.status === "rejected" ? "Apply again" : "Apply"}
        description={
          application?.status === "rejected"
            ? "Your last application was not approved. Tell us more about your audience and apply again."
            : "Tell us where you will promote Mailmark."
        }
        className="lg:col-span-2"
      >
        {canManage ? (
          <form onSubmit={submit} className="space-y-4">
            <Input
              label="Website or channel"
              type="url"
              placeholder="https://"
              value={website}
              onChange={(event) => setWebsite(event.target.value)}
              maxLength={300}
              required
              error={apply.error?.field === "website" ? apply.error.message : null}
            />
            <div>
              <label htmlFor="pitch" className="block text-sm font-medium text-zinc-900 dark:text-zinc-100">
                How will you promote Mailmark?
              </label>
              <textarea
                id="pitch"
                value={pitch}
                onChange={(event) => setPitch(event.target.value)}
                maxLength={2000}
                required
                rows={4}
                className="mt-2 block w-full rounded-lg border-0 bg-white px-3 py-2 text-sm text-zinc-900 shadow-sm ring-1 ring-zinc-300 ring-inset focus:ring-2 focus:ring-indigo-600 dark:bg-zinc-950 dark:text-white dark:ring-zinc-700"
              />
            </div>
            {apply.error && apply.error.field !== "website" ? <Alert tone="error">{apply.error.message}</Alert> : null}
            <div className="flex justify-end">
              <Button type="submit" loading={apply.pending}>
                Send application
              </Button>
            </div>
          </form>
        ) : (
          <p className="text-sm text-zinc-700 dark:text-zinc-300">Ask an owner or an admin of this account to apply.</p>
        )}
      </Card>
    </div>
  );
}

function Stat({ label, value }: { label: string; value: string }) {
  return (
    <div className="rounded-xl bg-white px-4 py-4 shadow-sm ring-1 ring-zinc-200 dark:bg-zinc-900 dark:ring-zinc-800">
      <dt className="text-sm text-zinc-600 dark:text-zinc-400">{label}</dt>
      <dd className="mt-1 text-2xl font-semibold tracking-tight text-zinc-900 dark:text-white">{value}</dd>
    </div>
  );
}

function Dashboard({ dashboard, onChanged }: { dashboard: AffiliateDashboard; onChanged: (state: AffiliateState) => void }) {
  return (
    <div className="space-y-6">
      <Card title="Your referral link" description="Share it anywhere. Sign-ups within 90 days of a visit count as yours.">
        <div className="flex flex-wrap items-center gap-3">
          <code className="min-w-0 flex-1 rounded-lg bg-zinc-100 px-3 py-2 text-sm break-all text-zinc-900 dark:bg-zinc-800 dark:text-zinc-100">
            {dashboard.link}
          </code>
          <CopyButton value={dashboard.link} text="Copy link" label="Copy your referral link" />
        </div>
      </Card>
      <dl className="grid grid-cols-2 gap-4 lg:grid-cols-3 xl:grid-cols-6" aria-label="Your numbers">
        <Stat label="Clicks" value={formatNumber(dashboard.clicks)} />
        <Stat label="Sign-ups" value={formatNumber(dashboard.signups)} />
        <Stat label="Paying customers" value={formatNumber(dashboard.payingCustomers)} />
        <Stat label="Earned" value={formatCents(dashboard.earnedCents)} />
        <Stat label="Pending" value={formatCents(dashboard.pendingCents)} />
        <Stat label="Paid" value={formatCents(dashboard.paidCents)} />
      </dl>
      <PayoutMethodCard dashboard={dashboard} onChanged={onChanged} />
      <section aria-labelledby="statements-heading">
        <h2 id="statements-heading" className="mb-3 text-base font-semibold text-zinc-900 dark:text-white">
          Monthly statements
        </h2>
        {dashboard.statements.length === 0 ? (
          <p className="text-sm text-zinc-600 dark:text-zinc-400">
            Your first statement appears on the 15th of next month.
          </p>
        ) : (
          <Table
            label="Monthly statements"
            rows={dashboard.statements}
            rowKey={(s) => s.month}
            cardTitle={(s) => s.month}
            columns={[
              { header: "Month", cell: (s) => s.month, hideOnCard: true },
              { header: "Carried in", cell: (s) => formatCents(s.openingCents) },
              { header: "Earned", cell: (s) => formatCents(s.earnedCents) },
              { header: "Balance", cell: (s) => formatCents(s.balanceCents) },
              {
                header: "Payout",
                cell: (s) =>
                  s.payoutCents > 0 ? (
                    `${formatCents(s.payoutCents)} on ${formatDate(s.payableOn)}`
                  ) : (
                    <span className="text-zinc-600 dark:text-zinc-400">Rolled over (under $50)</span>
                  ),
              },
            ]}
          />
        )}
      </section>
    </div>
  );
}

function PayoutMethodCard({
  dashboard,
  onChanged,
}: {
  dashboard: AffiliateDashboard;
  onChanged: (state: AffiliateState) => void;
}) {
  const { canManage } = useAuth();
  const toast = useToast();
  const [method, setMethod] = useState<"paypal" | "bank">(dashboard.payoutMethod ?? "paypal");
  const [paypalEmail, setPaypalEmail] = useState(dashboard.paypalEmail ?? "");
  const [bankDetails, setBankDetails] = useState("");
  const save = useAction(affiliateApi.setPayoutMethod);
  const onFile =
    dashboard.payoutMethod === "paypal"
      ? `PayPal: ${dashboard.paypalEmail}`
      : dashboard.payoutMethod === "bank"
        ? "Bank transfer (details on file, kept encrypted)"
        : "None yet: add one to be paid.";

  async function submit(event: FormEvent) {
    event.preventDefault();
    const next = await save.run(
      method === "paypal" ? { method, paypalEmail: paypalEmail.trim() } : { method, bankDetails: bankDetails.trim() },
    );
    if (next) {
      onChanged(next);
      setBankDetails("");
      toast.success("Payout method saved.");
    }
  }

  return (
    <Card title="Payout method" description={onFile}>
      {canManage ? (
        <form onSubmit={submit} className="space-y-4">
          <fieldset>
            <legend className="text-sm font-medium text-zinc-900 dark:text-zinc-100">Pay me by</legend>
            <div className="mt-2 flex gap-6 text-sm text-zinc-800 dark:text-zinc-200">
              {(["paypal", "bank"] as const).map((choice) => (
                <label key={choice} className="flex items-center gap-2">
                  <input
                    type="radio"
                    name="method"
                    value={choice}
                    checked={method === choice}
                    onChange={() => setMethod(choice)}
                    className="size-4 accent-indigo-600"
                  />
                  {choice === "paypal" ? "PayPal" : "Bank transfer (SWIFT/SEPA)"}
                </label>
              ))}
            </div>
          </fieldset>
          {method === "paypal" ? (
            <Input
              label="PayPal email"
              type="email"
              value={paypalEmail}
              onChange={(event) => setPaypalEmail(event.target.value)}
              required
            />
          ) : (
            <div>
              <label htmlFor="bank" className="block text-sm font-medium text-zinc-900 dark:text-zinc-100">
                Account holder, IBAN or account number, BIC/SWIFT
              </label>
              <textarea
                id="bank"
                value={bankDetails}
                onChange={(event) => setBankDetails(event.target.value)}
                maxLength={1000}
                required
                rows={3}
                className="mt-2 block w-full rounded-lg border-0 bg-white px-3 py-2 text-sm text-zinc-900 shadow-sm ring-1 ring-zinc-300 ring-inset focus:ring-2 focus:ring-indigo-600 dark:bg-zinc-950 dark:text-white dark:ring-zinc-700"
              />
            </div>
          )}
          {save.error ? <Alert tone="error">{save.error.message}</Alert> : null}
          <div className="flex justify-end">
            <Button type="submit" loading={save.pending}>
              Save payout method
            </Button>
          </div>
        </form>
      ) : null}
    </Card>
  );
}
