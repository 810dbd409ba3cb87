import { useState } from "react";
import { useSearchParams } from "react-router";
import { billingApi, type Billing, type PaidPlan, type PlanOffer } from "../../../api/billing";
import { formatCents } from "../../../api/affiliates";
import { useAccount } from "../../../account/AccountContext";
import { useAuth } from "../../../auth/AuthContext";
import { Alert } from "../../../components/Alert";
import { Button } from "../../../components/Button";
import { Badge, Card, PageHeader, type BadgeTone } from "../../../components/Card";
import { ConfirmDialog } from "../../../components/ConfirmDialog";
import { Spinner } from "../../../components/Spinner";
import { useToast } from "../../../components/Toast";
import { formatDate, formatNumber, plural } from "../../../lib/format";
import { useAction, useAsync } from "../../../lib/useAsync";
import { LoadError } from "../LoadError";
import { UsageMeter } from "../settings/UsageMeter";

const statusBadges: Record<Billing["account"]["status"], { label: string; tone: BadgeTone }> = {
  trial: { label: "Free trial", tone: "info" },
  active: { label: "Active", tone: "success" },
  paused: { label: "Paused", tone: "warning" },
};

function limit(value: number | null, one: string, many: string): string {
  return value === null ? `Unlimited ${many}` : `${formatNumber(value)} ${value === 1 ? one : many}`;
}

export default function BillingPage() {
  const billing = useAsync(() => billingApi.get(), []);
  const [params] = useSearchParams();
  return (
    <>
      <PageHeader title="Billing" description="Your plan, this month's usage, and your invoices." />
      {billing.error && !billing.data ? (
        <LoadError error={billing.error} reload={billing.reload} />
      ) : !billing.data ? (
        <div className="flex justify-center py-16 text-zinc-500">
          <Spinner className="size-6" label="Loading billing" />
        </div>
      ) : (
        <BillingDetails
          billing={billing.data}
          checkoutDone={params.get("checkout") === "done"}
          onChanged={(next) => billing.setData(next)}
        />
      )}
    </>
  );
}

function BillingDetails({
  billing,
  checkoutDone,
  onChanged,
}: {
  billing: Billing;
  /** Back from the payment page: the plan starts when the payment provider confirms it. */
  checkoutDone: boolean;
  onChanged: (billing: Billing) => void;
}) {
  const { canManage } = useAuth();
  const account = useAccount();
  const toast = useToast();
  const [confirmCancel, setConfirmCancel] = useState(false);
  const { account: current } = billing;
  const paying = current.status === "active" && billing.plans.some((offer) => offer.plan.name === current.plan.name);
  const status = statusBadges[current.status];

  const choose = useAction(async (plan: PaidPlan) => {
    if (paying) {
      const next = await billingApi.changePlan(plan);
      onChanged(next);
      void account.reload();
      toast.success(
        next.scheduledPlan === plan
          ? `You move to ${next.plans.find((o) => o.plan.name === plan)?.plan.label} at the end of this period.`
          : "Plan changed.",
      );
    } else {
      const { url } = await billingApi.checkout(plan);
      window.location.assign(url);
    }
  });
  const portal = useAction(async () => {
    const { url } = await billingApi.portal();
    window.location.assign(url);
  });
  const resume = useAction(async () => {
    onChanged(await billingApi.resume());
    toast.success("Your plan continues.");
  });

  return (
    <div className="space-y-6">
      {checkoutDone && !paying ? (
        <Alert tone="success">
          Thank you. Your plan starts as soon as the payment is confirmed, usually within a minute; reload this page to
          see it.
        </Alert>
      ) : null}
      {current.notices.map((notice) => (
        <Alert key={notice} tone="warning">
          {notice}
        </Alert>
      ))}
      {!billing.enabled ? (
        <Alert tone="info">
          This server does not sell plans: its operator sets each account's plan. You are on the {current.plan.label}{" "}
          plan.
        </Alert>
      ) : null}

      <Card
        title="Current plan"
        actions={<Badge tone={status.tone}>{status.label}</Badge>}
        description={
          <>
            <span className="font-medium text-zinc-900 dark:text-white">{current.plan.label}</span>
            {current.status === "trial" && current.trialDaysLeft !== null
              ? ` · ${plural(current.trialDaysLeft, "day")} left in the free trial, with Starter limits`
              : null}
            {paying && billing.currentPeriodEnd
              ? billing.cancelAtPeriodEnd
                ? ` · cancelled, ends ${formatDate(billing.currentPeriodEnd)}`
                : ` · renews ${formatDate(billing.currentPeriodEnd)}`
              : null}
          </>
        }
      >
        <div className="space-y-5">
          {billing.scheduledPlan ? (
            <Alert tone="info">
              Moving to the {billing.scheduledPlan.charAt(0).toUpperCase() + billing.scheduledPlan.slice(1)} plan on{" "}
              {formatDate(billing.currentPeriodEnd)}.
            </Alert>
          ) : null}
          <UsageMeter label="Emails this month" used={current.usage.emailsThisMonth} limit={current.plan.emailsPerMonth} />
          <UsageMeter label="Domains" used={current.usage.domains} limit={current.plan.domains} />
          <UsageMeter label="Mailboxes" used={current.usage.mailboxes} limit={current.plan.mailboxes} />
          {billing.enabled && canManage && paying ? (
            <div className="flex flex-wrap justify-end gap-2 border-t border-zinc-200 pt-4 dark:border-zinc-800">
              {paying && billing.cancelAtPeriodEnd ? (
                <Button variant="secondary" loading={resume.pending} onClick={() => void resume.run()}>
                  Keep my plan
                </Button>
              ) : null}
              {paying && !billing.cancelAtPeriodEnd ? (
                <Button variant="ghost" onClick={() => setConfirmCancel(true)}>
                  Cancel plan
                </Button>
              ) : null}
              {paying ? (
                <Button variant="secondary" loading={portal.pending} onClick={() => void portal.run()}>
                  Invoices and payment method
                </Button>
              ) : null}
            </div>
          ) : null}
          {portal.error ? <Alert tone="error">{portal.error.message}</Alert> : null}
          {resume.error ? <Alert tone="error">{resume.error.message}</Alert> : null}
        </div>
      </Card>

      {billing.enabled ? (
        <section aria-labelledby="plans-heading">
          <h2 id="plans-heading" className="mb-1 text-base font-semibold text-zinc-900 dark:text-white">
            Plans
          </h2>
          <p className="mb-4 text-sm text-zinc-600 dark:text-zinc-400">
            Billed monthly. Upgrades start at once and are prorated; downgrades start at the end of the period. Cancel any
            time.
          </p>
          {choose.error ? (
            <Alert tone="error" className="mb-4">
              {choose.error.message}
            </Alert>
          ) : null}
          <div className="grid gap-4 md:grid-cols-3">
            {billing.plans.map((offer) => (
              <PlanCard
                key={offer.plan.name}
                offer={offer}
                current={paying && offer.plan.name === current.plan.name}
                paying={paying}
                currentPrice={billing.plans.find((o) => o.plan.name === current.plan.name)?.priceCents ?? 0}
                canManage={canManage}
                pending={choose.pending}
                onChoose={() => void choose.run(offer.plan.name as PaidPlan)}
              />
            ))}
          </div>
        </section>
      ) : null}

      <ConfirmDialog
        open={confirmCancel}
        onClose={() => setConfirmCancel(false)}
        onConfirm={async () => {
          onChanged(await billingApi.cancel());
          toast.success("Your plan is cancelled at the end of the period.");
        }}
        title="Cancel your plan?"
        description={`You keep the ${current.plan.label} plan until ${formatDate(billing.currentPeriodEnd)}. After that the account pauses: mail still arrives and can be read, but nothing can be sent until you choose a plan again.`}
        actionLabel="Cancel plan"
      />
    </div>
  );
}

function PlanCard({
  offer,
  current,
  paying,
  currentPrice,
  canManage,
  pending,
  onChoose,
}: {
  offer: PlanOffer;
  current: boolean;
  paying: boolean;
  currentPrice: number;
  canManage: boolean;
  pending: boolean;
  onChoose: () => void;
}) {
  const { plan, priceCents } = offer;
  const action = !paying ? `Choose ${plan.label}` : priceCents > currentPrice ? `Upgrade to ${plan.label}` : `Downgrade to ${plan.label}`;
  return (
    <div
      className={`flex flex-col rounded-xl bg-white p-5 shadow-sm ring-1 dark:bg-zinc-900 ${
        current ? "ring-2 ring-indigo-600 dark:ring-indigo-400" : "ring-zinc-200 dark:ring-zinc-800"
      }`}
    >
      <div className="flex items-center justify-between gap-2">
        <h3 className="text-base font-semibold text-zinc-900 dark:text-white">{plan.label}</h3>
        {current ? <Badge tone="info">Your plan</Badge> : null}
      </div>
      <p className="mt-3">
        <span className="text-3xl font-semibold tracking-tight text-zinc-900 dark:text-white">
          {formatCents(priceCents).replace(/\.00$/, "")}
        </span>
        <span className="text-sm text-zinc-600 dark:text-zinc-400"> / month</span>
      </p>
      <ul className="mt-4 flex-1 space-y-2 text-sm text-zinc-700 dark:text-zinc-300">
        <li>{plan.emailsPerMonth === null ? "Unlimited emails" : `${formatNumber(plan.emailsPerMonth)} emails a month`}</li>
        <li>{limit(plan.domains, "domain", "domains")}</li>
        <li>{limit(plan.mailboxes, "mailbox", "mailboxes")}</li>
        <li>Webmail, campaigns, analytics and the REST API</li>
      </ul>
      {canManage && !current ? (
        <Button className="mt-5 w-full" variant={paying && priceCents < currentPrice ? "secondary" : "primary"} loading={pending} onClick={onChoose}>
          {action}
        </Button>
      ) : null}
    </div>
  );
}
