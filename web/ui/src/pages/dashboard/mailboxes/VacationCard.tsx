import { useEffect, useState, type FormEvent } from "react";
import { vacationApi, type Vacation } from "../../../api/vacation";
import { Alert } from "../../../components/Alert";
import { Button } from "../../../components/Button";
import { Badge, Card } from "../../../components/Card";
import { Checkbox, Input, Textarea } from "../../../components/Field";
import { Spinner } from "../../../components/Spinner";
import { useToast } from "../../../components/Toast";
import { formatDate } from "../../../lib/format";
import { useAction, useAsync } from "../../../lib/useAsync";

type Form = {
  enabled: boolean;
  firstDay: string;
  lastDay: string;
  subject: string;
  body: string;
  days: string;
};

const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

/** The day before `date` (YYYY-MM-DD), computed on the calendar, not in any time zone. */
function dayBefore(date: string): string {
  const previous = new Date(`${date}T00:00:00Z`);
  previous.setUTCDate(previous.getUTCDate() - 1);
  return previous.toISOString().slice(0, 10);
}

/** The last day the owner picked: the server keeps the first moment after it (midnight). */
function lastDayOf(endsAt: string | null): string {
  if (!endsAt) return "";
  const date = endsAt.slice(0, 10);
  return endsAt.endsWith("T00:00") ? dayBefore(date) : date;
}

function formOf(vacation: Vacation): Form {
  return {
    enabled: vacation.enabled,
    firstDay: vacation.startsAt?.slice(0, 10) ?? "",
    lastDay: lastDayOf(vacation.endsAt),
    subject: vacation.subject,
    body: vacation.body,
    days: String(vacation.days),
  };
}

function sameForm(a: Form, b: Form): boolean {
  return (Object.keys(a) as (keyof Form)[]).every((key) => a[key] === b[key]);
}

function status(vacation: Vacation): { tone: "success" | "info" | "neutral"; label: string } {
  if (vacation.active) return { tone: "success", label: "On" };
  if (vacation.enabled) return { tone: "info", label: "Scheduled" };
  return { tone: "neutral", label: "Off" };
}

function summary(vacation: Vacation): string {
  const first = vacation.startsAt ? formatDate(vacation.startsAt.slice(0, 10)) : null;
  const last = vacation.endsAt ? formatDate(lastDayOf(vacation.endsAt)) : null;
  if (!vacation.enabled) return "Turned off: mail is not answered automatically.";
  if (first && last) return `Answering mail from ${first} to ${last} (${vacation.timeZone}).`;
  if (first) return `Answering mail from ${first} (${vacation.timeZone}) until turned off.`;
  if (last) return `Answering mail until the end of ${last} (${vacation.timeZone}).`;
  return "Answering mail until turned off.";
}

/**
 * The vacation responder: an automatic answer to mail that reaches this mailbox while it is on,
 * between its first and last day, sent once every few days to each sender. The server decides
 * what is never answered (lists, bulk and automatic mail) and whether it is on right now.
 */
export function VacationCard({ address }: { address: string }) {
  const saved = useAsync(() => vacationApi.get(address), [address]);
  const [form, setForm] = useState<Form | null>(null);
  const toast = useToast();

  useEffect(() => {
    if (saved.data) setForm(formOf(saved.data));
  }, [saved.data]);

  const zone = saved.data && (saved.data.startsAt || saved.data.endsAt) ? saved.data.timeZone : browserZone;
  const save = useAction((values: Form) =>
    vacationApi.set(address, {
      enabled: values.enabled,
      subject: values.subject.trim(),
      body: values.body,
      days: Number(values.days),
      timeZone: zone,
      startsAt: values.firstDay || null,
      endsAt: values.lastDay || null,
    }),
  );

  const vacation = saved.data;
  const badge = vacation ? status(vacation) : null;

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (!form) return;
    const result = await save.run(form);
    if (result) {
      saved.setData(result);
      toast.success(result.enabled ? "Vacation responder saved." : "Vacation responder turned off.");
    }
  }

  function update<K extends keyof Form>(key: K, value: Form[K]) {
    setForm((current) => (current ? { ...current, [key]: value } : current));
  }

  const fieldError = (field: string) => (save.error?.field === field ? save.error.message : null);
  const changed = form && vacation ? !sameForm(form, formOf(vacation)) : false;

  return (
    <Card
      title="Vacation responder"
      description="Answer mail automatically while you are away."
      actions={badge ? <Badge tone={badge.tone}>{badge.label}</Badge> : null}
    >
      {!form || !vacation ? (
        saved.error ? (
          <Alert tone="error">{saved.error.message}</Alert>
        ) : (
          <div className="flex justify-center py-6 text-zinc-500">
            <Spinner className="size-5" label="Loading the vacation responder" />
          </div>
        )
      ) : (
        <form onSubmit={submit} className="space-y-5" aria-label="Vacation responder">
          {save.error && !save.error.field ? <Alert tone="error">{save.error.message}</Alert> : null}
          <p className="text-sm text-zinc-700 dark:text-zinc-300">{summary(vacation)}</p>
          <Checkbox
            label="Send automatic replies"
            hint="Never sent to mailing lists, bulk or automatic mail, or mail that does not name this address."
            checked={form.enabled}
            onChange={(event) => update("enabled", event.target.checked)}
          />
          <fieldset disabled={!form.enabled} className="space-y-5 disabled:opacity-60">
            <legend className="sr-only">Reply settings</legend>
            <div className="grid gap-4 sm:grid-cols-2">
              <Input
                type="date"
                label="First day"
                value={form.firstDay}
                onChange={(event) => update("firstDay", event.target.value)}
                error={fieldError("startsAt")}
                hint="Empty: from now."
              />
              <Input
                type="date"
                label="Last day"
                value={form.lastDay}
                min={form.firstDay || undefined}
                onChange={(event) => update("lastDay", event.target.value)}
                error={fieldError("endsAt")}
                hint={`Empty: until turned off. Dates are in ${zone} time.`}
              />
            </div>
            <Input
              label="Subject"
              value={form.subject}
              onChange={(event) => update("subject", event.target.value)}
              placeholder="Auto: the original subject"
              maxLength={500}
              error={fieldError("subject")}
            />
            <Textarea
              label="Message"
              value={form.body}
              onChange={(event) => update("body", event.target.value)}
              rows={6}
              maxLength={20_000}
              placeholder="I'm away until Monday 14 July with limited access to email. For anything urgent, write to…"
              error={fieldError("body")}
            />
            <Input
              type="number"
              label="Reply to the same sender once every"
              min={1}
              max={365}
              value={form.days}
              onChange={(event) => update("days", event.target.value)}
              className="max-w-xs"
              suffix={<span className="self-center text-sm text-zinc-700 dark:text-zinc-300">days</span>}
              error={fieldError("days")}
            />
          </fieldset>
          <div className="flex flex-wrap items-center justify-end gap-3">
            {changed ? <span className="text-sm text-zinc-600 dark:text-zinc-400">Unsaved changes</span> : null}
            <Button type="submit" loading={save.pending} disabled={!changed}>
              {save.pending ? "Saving…" : "Save vacation responder"}
            </Button>
          </div>
        </form>
      )}
    </Card>
  );
}
