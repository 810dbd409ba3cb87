import { useEffect, useState, type FormEvent } from "react";
import { accountApi, type Account } from "../../../api/account";
import { useAccount } from "../../../account/AccountContext";
import { useAuth } from "../../../auth/AuthContext";
import { Alert } from "../../../components/Alert";
import { Button } from "../../../components/Button";
import { Badge, Card, PageHeader, type BadgeTone } from "../../../components/Card";
import { Input } from "../../../components/Field";
import { SettingsTabs } from "../../../components/SettingsTabs";
import { Spinner } from "../../../components/Spinner";
import { useToast } from "../../../components/Toast";
import { formatDate, plural } from "../../../lib/format";
import { useAction } from "../../../lib/useAsync";
import { LoadError } from "../LoadError";
import { UsageMeter } from "./UsageMeter";

const statusBadges: Record<Account["status"], { label: string; tone: BadgeTone }> = {
  trial: { label: "Free trial", tone: "info" },
  active: { label: "Active", tone: "success" },
  paused: { label: "Paused", tone: "warning" },
};

export default function SettingsPage() {
  const account = useAccount();
  return (
    <>
      <PageHeader title="Settings" description="Your account, its plan and this month's usage." />
      <SettingsTabs />
      {account.error && !account.data ? (
        <LoadError error={account.error} reload={account.reload} />
      ) : !account.data ? (
        <div className="flex justify-center py-16 text-zinc-500">
          <Spinner className="size-6" label="Loading the account" />
        </div>
      ) : (
        <AccountSettings account={account.data} onChanged={(next) => account.setData(next)} />
      )}
    </>
  );
}

function AccountSettings({ account, onChanged }: { account: Account; onChanged: (account: Account) => void }) {
  const { canManage, updateUser } = useAuth();
  const toast = useToast();
  const [name, setName] = useState(account.name);
  const rename = useAction(accountApi.rename);
  useEffect(() => setName(account.name), [account.name]);

  async function submit(event: FormEvent) {
    event.preventDefault();
    const next = await rename.run(name.trim());
    if (next) {
      onChanged(next);
      updateUser({ accountName: next.name });
      toast.success("Account name saved.");
    }
  }

  const { plan, usage } = account;
  const status = statusBadges[account.status];

  return (
    <div className="space-y-6">
      {account.notices.length > 0 ? (
        <section className="space-y-3" aria-label="Account notices">
          {account.notices.map((notice) => (
            <Alert key={notice} tone="warning">
              {notice}
            </Alert>
          ))}
        </section>
      ) : null}

      <Card title="Account" description="The name your team sees at the top of the dashboard and in invitations.">
        {canManage ? (
          <form onSubmit={submit} className="space-y-4">
            <Input
              label="Account name"
              value={name}
              onChange={(event) => setName(event.target.value)}
              maxLength={200}
              required
              error={rename.error?.message ?? null}
            />
            <div className="flex justify-end">
              <Button type="submit" loading={rename.pending} disabled={name.trim() === "" || name.trim() === account.name}>
                {rename.pending ? "Saving…" : "Save account name"}
              </Button>
            </div>
          </form>
        ) : (
          <dl className="text-sm">
            <dt className="text-zinc-600 dark:text-zinc-400">Account name</dt>
            <dd className="mt-1 font-medium text-zinc-900 dark:text-white">{account.name}</dd>
          </dl>
        )}
      </Card>

      <Card
        title="Plan and usage"
        actions={<Badge tone={status.tone}>{status.label}</Badge>}
        description={
          <>
            <span className="font-medium text-zinc-900 dark:text-white">{plan.label}</span> plan
            {account.status === "trial" && account.trialDaysLeft !== null ? (
              <>
                {" "}
                · {plural(account.trialDaysLeft, "day")} left in the free trial
                {account.trialEndsAt ? ` (ends ${formatDate(account.trialEndsAt)})` : ""}
              </>
            ) : null}
          </>
        }
      >
        <div className="space-y-5">
          <UsageMeter label="Emails this month" used={usage.emailsThisMonth} limit={plan.emailsPerMonth} />
          <UsageMeter label="Domains" used={usage.domains} limit={plan.domains} />
          <UsageMeter label="Mailboxes" used={usage.mailboxes} limit={plan.mailboxes} />
          <p className="text-sm text-zinc-600 dark:text-zinc-400">
            The email count starts again on the first day of each calendar month. When a limit is reached, the action
            it covers is refused until the next month or a plan with more room.
          </p>
        </div>
      </Card>
    </div>
  );
}
