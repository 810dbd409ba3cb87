import { useEffect, useMemo, useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { campaignsApi, type Campaign, type Choices, type Preview } from "../../../api/campaigns";
import { ApiError } from "../../../api/client";
import { useUser } from "../../../auth/AuthContext";
import { Alert } from "../../../components/Alert";
import { Button, ButtonLink } from "../../../components/Button";
import { Card, PageHeader } from "../../../components/Card";
import { ConfirmDialog } from "../../../components/ConfirmDialog";
import { Checkbox, Input, Select, Textarea } from "../../../components/Field";
import { Spinner } from "../../../components/Spinner";
import { useToast } from "../../../components/Toast";
import { plural } from "../../../lib/format";
import { asApiError, useAsync } from "../../../lib/useAsync";
import { LoadError } from "../LoadError";
import { campaignPath } from "./CampaignsArea";
import { changeOf, emptyForm, errorFor, formOf, NEW_STAGE, senderDomain, shownAtField, type CampaignForm, type StageForm } from "./form";
import { describeDelay, describeWindow, WEEKDAYS } from "./logic";

const HOURS = Array.from({ length: 25 }, (_, hour) => hour);
const FALLBACK_ZONES = ["UTC", "Europe/London", "Europe/Paris", "Europe/Berlin", "America/New_York", "America/Chicago", "America/Los_Angeles", "Asia/Tokyo", "Australia/Sydney"];

function timeZones(current: string): string[] {
  let zones: string[] = FALLBACK_ZONES;
  try {
    zones = (Intl as unknown as { supportedValuesOf?: (key: string) => string[] }).supportedValuesOf?.("timeZone") ?? zones;
  } catch {
    // An older browser: the short list.
  }
  return zones.includes(current) ? zones : [current, ...zones];
}

export function CampaignEditorPage() {
  const { id } = useParams();
  const choices = useAsync(() => campaignsApi.choices(), []);
  const campaign = useAsync<Campaign | null>(() => (id ? campaignsApi.get(id) : Promise.resolve(null)), [id]);
  const error = choices.error ?? campaign.error;
  const title = id ? (campaign.data ? `Edit ${campaign.data.name}` : "Edit campaign") : "New campaign";
  const back = (
    <Link to={id ? campaignPath(id) : "/dashboard/campaigns"} className="text-indigo-700 hover:underline dark:text-indigo-300">
      ← {id ? "Campaign" : "Campaigns"}
    </Link>
  );
  return (
    <>
      <PageHeader title={title} back={back} />
      {error ? (
        <LoadError error={error} reload={() => Promise.all([choices.reload(), campaign.reload()])} />
      ) : choices.data === undefined || campaign.data === undefined ? (
        <div className="flex justify-center py-16 text-zinc-500">
          <Spinner className="size-6" label="Loading the campaign" />
        </div>
      ) : (
        <Editor key={campaign.data?.updatedAt ?? "new"} choices={choices.data} campaign={campaign.data} onSaved={campaign.setData} />
      )}
    </>
  );
}

function Editor({ choices, campaign, onSaved }: { choices: Choices; campaign: Campaign | null; onSaved: (c: Campaign) => void }) {
  const navigate = useNavigate();
  const toast = useToast();
  const [form, setForm] = useState<CampaignForm>(() => (campaign ? formOf(campaign) : emptyForm()));
  const [saving, setSaving] = useState(false);
  const [problem, setProblem] = useState<ApiError | null>(null);
  const [launching, setLaunching] = useState(false);
  const editable = campaign === null || campaign.status === "draft" || campaign.status === "paused";
  const launched = campaign !== null && campaign.status !== "draft";
  const zones = useMemo(() => timeZones(form.timezone), [form.timezone]);
  const delays = form.stages.map((stage, index) => (index === 0 ? 0 : Number(stage.delayDays) || 0));
  const audienceSize = choices.lists.filter((item) => form.listIds.includes(item.id)).reduce((sum, item) => sum + item.size, 0);

  const set = <K extends keyof CampaignForm>(key: K, value: CampaignForm[K]) => setForm((current) => ({ ...current, [key]: value }));
  const setStage = (index: number, change: Partial<StageForm>) =>
    setForm((current) => ({ ...current, stages: current.stages.map((stage, at) => (at === index ? { ...stage, ...change } : stage)) }));
  const fieldError = (name: string) => (problem && errorFor(problem.field, name) ? problem.message : null);

  async function save(event?: FormEvent): Promise<Campaign | null> {
    event?.preventDefault();
    setSaving(true);
    setProblem(null);
    try {
      const change = changeOf(form);
      if (launched) {
        delete change.audience;
      }
      let saved: Campaign;
      if (campaign) {
        saved = await campaignsApi.update(campaign._id, change);
      } else {
        const domain = senderDomain(form.sender, choices);
        if (!domain) {
          setProblem(new ApiError(400, "invalid_input", "Choose who the campaign is sent from.", "from"));
          return null;
        }
        saved = await campaignsApi.create(domain, change);
      }
      toast.success(campaign ? "Campaign saved." : "Draft saved.");
      if (campaign) onSaved(saved);
      else navigate(campaignPath(saved._id, "/edit"), { replace: true });
      return saved;
    } catch (caught) {
      setProblem(asApiError(caught));
      return null;
    } finally {
      setSaving(false);
    }
  }

  async function launch() {
    if (!campaign) return;
    const saved = await save();
    if (!saved) throw new Error("The campaign could not be saved: the form says what to fix.");
    await campaignsApi.launch(campaign._id);
    toast.success("Campaign launched.");
    navigate(campaignPath(campaign._id));
  }

  const generalError = problem && !shownAtField(problem.field) ? problem.message : null;
  const stageError = problem && problem.field === "stages" ? problem : null;

  return (
    <div className="space-y-6">
    <form onSubmit={(event) => void save(event)} aria-label="Campaign" className="space-y-6" noValidate>
      {!editable ? (
        <Alert tone="warning">This campaign is {campaign?.status}: pause it to change its stages or schedule.</Alert>
      ) : null}
      <Card title="Basics" description="Who it comes from and who gets it.">
        <div className="grid gap-5 sm:grid-cols-2">
          <Input label="Name" value={form.name} onChange={(event) => set("name", event.target.value)} maxLength={200} error={fieldError("name")} disabled={!editable} required />
          <Select
            label="Send from"
            value={form.sender}
            onChange={(event) => set("sender", event.target.value)}
            error={fieldError("sender")}
            disabled={!editable}
            hint="One mailbox, or a sender group whose mailboxes take turns."
          >
            <option value="">Choose a sender…</option>
            <optgroup label="Mailboxes">
              {choices.mailboxes.map((mailbox) => (
                <option key={mailbox.address} value={`mailbox:${mailbox.address}`}>
                  {mailbox.displayName ? `${mailbox.displayName} <${mailbox.address}>` : mailbox.address}
                </option>
              ))}
            </optgroup>
            {choices.senderGroups.length > 0 ? (
              <optgroup label="Sender groups">
                {choices.senderGroups.map((group) => (
                  <option key={group.id} value={`group:${group.id}`}>
                    {group.name} ({group.domain})
                  </option>
                ))}
              </optgroup>
            ) : null}
          </Select>
        </div>
        <fieldset className="mt-5">
          <legend className="text-sm font-medium text-zinc-900 dark:text-zinc-100">Audience</legend>
          {choices.lists.length === 0 ? (
            <p className="mt-1 text-sm text-zinc-600 dark:text-zinc-400">No contact lists yet: import contacts into a list first.</p>
          ) : (
            <div className="mt-2 grid gap-2 sm:grid-cols-2">
              {choices.lists.map((item) => (
                <Checkbox
                  key={item.id}
                  label={item.name}
                  hint={`${plural(item.size, "contact")}${item.segment ? " · segment" : ""}`}
                  checked={form.listIds.includes(item.id)}
                  disabled={launched || !editable}
                  onChange={(event) =>
                    set("listIds", event.target.checked ? [...form.listIds, item.id] : form.listIds.filter((listId) => listId !== item.id))
                  }
                />
              ))}
            </div>
          )}
          {fieldError("audience") ? (
            <p role="alert" className="mt-1.5 text-sm text-red-700 dark:text-red-400">
              {fieldError("audience")}
            </p>
          ) : form.listIds.length > 0 ? (
            <p className="mt-2 text-sm text-zinc-600 dark:text-zinc-400">
              Up to {plural(audienceSize, "contact")}; unsubscribed, bounced and suppressed addresses are left out at launch.
            </p>
          ) : null}
        </fieldset>
      </Card>

      <Card
        title="Stages"
        description="Stage 1 goes first; each follow-up goes after a delay to those who have not replied, as a reply in the same thread."
        actions={
          editable && form.stages.length < 10 ? (
            <Button type="button" variant="secondary" size="sm" onClick={() => set("stages", [...form.stages, { ...NEW_STAGE }])}>
              Add follow-up
            </Button>
          ) : null
        }
      >
        <MergeTagHelp />
        {stageError ? (
          <Alert tone="error" className="mt-4">
            {stageError.message}
          </Alert>
        ) : null}
        <ol className="mt-4 space-y-6">
          {form.stages.map((stage, index) => (
            <li key={index} className="rounded-lg p-4 ring-1 ring-zinc-200 dark:ring-zinc-800" aria-label={`Stage ${index + 1}`}>
              <div className="mb-3 flex flex-wrap items-center justify-between gap-2">
                <h3 className="text-sm font-semibold text-zinc-900 dark:text-white">Stage {index + 1}</h3>
                {index > 0 && editable && !(launched && index < (campaign?.stages.length ?? 0)) ? (
                  <Button type="button" variant="ghost" size="sm" onClick={() => set("stages", form.stages.filter((_, at) => at !== index))}>
                    Remove stage {index + 1}
                  </Button>
                ) : null}
              </div>
              <p className="mb-3 text-sm text-zinc-600 dark:text-zinc-400">{describeDelay(index, delays)}</p>
              <div className="grid gap-4">
                {index > 0 ? (
                  <div className="flex flex-wrap items-end gap-4">
                    <Input
                      label="Days after the previous stage"
                      type="number"
                      min={0}
                      max={365}
                      inputMode="numeric"
                      className="w-56"
                      value={stage.delayDays}
                      onChange={(event) => setStage(index, { delayDays: event.target.value })}
                      error={fieldError(`stages[${index}].delayDays`)}
                      disabled={!editable}
                    />
                    <Checkbox
                      label="Send as a new email"
                      hint="Instead of a reply in the thread."
                      checked={stage.newThread}
                      disabled={!editable}
                      onChange={(event) => setStage(index, { newThread: event.target.checked })}
                    />
                  </div>
                ) : null}
                {index === 0 || stage.newThread ? (
                  <Input
                    label="Subject"
                    value={stage.subject}
                    maxLength={500}
                    onChange={(event) => setStage(index, { subject: event.target.value })}
                    error={fieldError(`stages[${index}].subject`)}
                    disabled={!editable}
                  />
                ) : (
                  <p className="text-sm text-zinc-600 dark:text-zinc-400">Subject: “Re:” and the thread's subject.</p>
                )}
                {index === 0 || stage.newThread ? (
                  <div className="space-y-2">
                    {stage.variants.map((variant, at) => (
                      <Input
                        key={at}
                        label={`Subject variant ${String.fromCharCode(66 + at)}`}
                        value={variant}
                        maxLength={500}
                        disabled={!editable}
                        onChange={(event) => setStage(index, { variants: stage.variants.map((v, i) => (i === at ? event.target.value : v)) })}
                        suffix={
                          editable ? (
                            <Button type="button" variant="ghost" onClick={() => setStage(index, { variants: stage.variants.filter((_, i) => i !== at) })}>
                              Remove
                            </Button>
                          ) : null
                        }
                      />
                    ))}
                    {fieldError(`stages[${index}].subjectVariants`) ? (
                      <p role="alert" className="text-sm text-red-700 dark:text-red-400">
                        {fieldError(`stages[${index}].subjectVariants`)}
                      </p>
                    ) : null}
                    {editable && stage.variants.length < 4 ? (
                      <Button type="button" variant="secondary" size="sm" onClick={() => setStage(index, { variants: [...stage.variants, ""] })}>
                        Add an A/B subject variant
                      </Button>
                    ) : null}
                  </div>
                ) : null}
                <Textarea
                  label="Message (HTML)"
                  rows={6}
                  className="[&_textarea]:font-mono"
                  value={stage.html}
                  onChange={(event) => setStage(index, { html: event.target.value })}
                  error={fieldError(`stages[${index}].html`)}
                  disabled={!editable}
                  hint="A plain-text part is made from it. Links are tracked when click tracking is on."
                />
              </div>
            </li>
          ))}
        </ol>
      </Card>

      <Card title="Schedule and pacing" description={`Sending window: ${describeWindow(form.days, [form.fromHour, form.toHour])} (${form.timezone}).`}>
        <div className="grid gap-5 sm:grid-cols-2">
          <fieldset>
            <legend className="mb-1.5 text-sm font-medium text-zinc-900 dark:text-zinc-100">Start</legend>
            <div className="space-y-2 text-sm">
              {(["launch", "at"] as const).map((mode) => (
                <label key={mode} className="flex items-center gap-2 text-zinc-900 dark:text-zinc-100">
                  <input type="radio" name="start" className="accent-indigo-600" checked={form.startMode === mode} disabled={!editable} onChange={() => set("startMode", mode)} />
                  {mode === "launch" ? "As soon as it is launched" : "At a date and time"}
                </label>
              ))}
            </div>
            {form.startMode === "at" ? (
              <Input
                label="Starts at"
                type="datetime-local"
                className="mt-3"
                value={form.startAt}
                onChange={(event) => set("startAt", event.target.value)}
                error={fieldError("schedule.startAt")}
                disabled={!editable}
              />
            ) : null}
          </fieldset>
          <Select label="Time zone" value={form.timezone} onChange={(event) => set("timezone", event.target.value)} error={fieldError("schedule.timezone")} disabled={!editable}>
            {zones.map((zone) => (
              <option key={zone} value={zone}>
                {zone}
              </option>
            ))}
          </Select>
          <fieldset className="sm:col-span-2">
            <legend className="mb-1.5 text-sm font-medium text-zinc-900 dark:text-zinc-100">Sending days</legend>
            <div className="flex flex-wrap gap-4">
              {WEEKDAYS.map((day, index) => (
                <Checkbox
                  key={day}
                  label={day}
                  checked={form.days.includes(index + 1)}
                  disabled={!editable}
                  onChange={(event) => set("days", event.target.checked ? [...form.days, index + 1] : form.days.filter((d) => d !== index + 1))}
                />
              ))}
            </div>
            {fieldError("schedule.days") ? (
              <p role="alert" className="mt-1.5 text-sm text-red-700 dark:text-red-400">
                {fieldError("schedule.days")}
              </p>
            ) : null}
          </fieldset>
          <div className="grid grid-cols-2 gap-4">
            <Select label="From" value={form.fromHour} onChange={(event) => set("fromHour", Number(event.target.value))} disabled={!editable} error={fieldError("schedule.hours")}>
              {HOURS.slice(0, 24).map((hour) => (
                <option key={hour} value={hour}>
                  {hour}:00
                </option>
              ))}
            </Select>
            <Select label="Until" value={form.toHour} onChange={(event) => set("toHour", Number(event.target.value))} disabled={!editable}>
              {HOURS.slice(1).map((hour) => (
                <option key={hour} value={hour}>
                  {hour}:00
                </option>
              ))}
            </Select>
          </div>
          <div className="grid grid-cols-2 gap-4">
            <Input
              label="Daily cap per mailbox"
              type="number"
              min={1}
              inputMode="numeric"
              value={form.dailyCap}
              onChange={(event) => set("dailyCap", event.target.value)}
              error={fieldError("schedule.dailyCap")}
              hint="Empty: no cap."
              disabled={!editable}
            />
            <Input
              label="Seconds between sends"
              type="number"
              min={0}
              inputMode="numeric"
              value={form.spacingSeconds}
              onChange={(event) => set("spacingSeconds", event.target.value)}
              error={fieldError("schedule.spacingSeconds")}
              hint="From one mailbox."
              disabled={!editable}
            />
          </div>
          <fieldset className="sm:col-span-2">
            <legend className="mb-1.5 text-sm font-medium text-zinc-900 dark:text-zinc-100">Tracking</legend>
            <div className="flex flex-wrap gap-6">
              <Checkbox label="Track opens" hint="A tiny image; privacy proxies' opens are counted apart." checked={form.trackOpens} disabled={!editable} onChange={(event) => set("trackOpens", event.target.checked)} />
              <Checkbox label="Track clicks" hint="Links go through a signed redirect." checked={form.trackClicks} disabled={!editable} onChange={(event) => set("trackClicks", event.target.checked)} />
            </div>
          </fieldset>
        </div>
      </Card>

      {generalError ? <Alert tone="error">{generalError}</Alert> : null}
      <div className="flex flex-wrap items-center justify-end gap-3">
        {!campaign ? <span className="text-sm text-zinc-600 dark:text-zinc-400">Save the draft to preview it for a contact and send yourself a test.</span> : null}
        {campaign ? (
          <ButtonLink to={campaignPath(campaign._id)} variant="secondary">
            {launched ? "Back to analytics" : "Close"}
          </ButtonLink>
        ) : null}
        {editable ? (
          <Button type="submit" variant={campaign?.status === "draft" ? "secondary" : "primary"} loading={saving}>
            {campaign ? "Save changes" : "Save draft"}
          </Button>
        ) : null}
        {campaign?.status === "draft" ? (
          <Button type="button" onClick={() => setLaunching(true)}>
            Launch…
          </Button>
        ) : null}
      </div>
    </form>

      {campaign ? <PreviewCard campaign={campaign} stages={form.stages.length} /> : null}

      {campaign ? (
        <ConfirmDialog
          open={launching}
          onClose={() => setLaunching(false)}
          onConfirm={launch}
          danger={false}
          title={`Launch ${campaign.name}?`}
          description={
            form.startMode === "at" && form.startAt
              ? `It is saved and starts sending at ${form.startAt.replace("T", " ")} (${form.timezone}), within its sending window.`
              : "It is saved and starts sending now, within its sending window. Its audience is fixed at launch."
          }
          actionLabel="Launch campaign"
        />
      ) : null}
    </div>
  );
}

function MergeTagHelp() {
  const tags: [string, string][] = [
    ["{{firstName}}", "the contact's first name"],
    ["{{lastName}}", "their last name"],
    ["{{company}}", "their company"],
    ["{{email}}", "their address"],
    ["{{plan}}", "any custom field, by its name"],
    ["{{firstName|there}}", "with a fallback when the field is empty"],
  ];
  return (
    <details className="rounded-lg bg-zinc-50 px-4 py-3 text-sm ring-1 ring-zinc-200 dark:bg-zinc-950 dark:ring-zinc-800">
      <summary className="cursor-pointer font-medium text-zinc-900 dark:text-zinc-100">Merge tags</summary>
      <dl className="mt-2 grid gap-x-6 gap-y-1 sm:grid-cols-[auto_1fr]">
        {tags.map(([tag, meaning]) => (
          <div key={tag} className="contents">
            <dt>
              <code className="font-mono text-indigo-700 dark:text-indigo-300">{tag}</code>
            </dt>
            <dd className="text-zinc-600 dark:text-zinc-400">{meaning}</dd>
          </div>
        ))}
      </dl>
      <p className="mt-2 text-zinc-600 dark:text-zinc-400">Values are escaped in the HTML and can never add headers.</p>
    </details>
  );
}

function PreviewCard({ campaign, stages }: { campaign: Campaign; stages: number }) {
  const user = useUser();
  const toast = useToast();
  const contacts = useAsync(() => campaignsApi.contacts(campaign._id), [campaign._id, campaign.updatedAt]);
  const [contactId, setContactId] = useState("");
  const [stage, setStage] = useState(1);
  const [preview, setPreview] = useState<Preview | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [to, setTo] = useState(user.email);
  const [sending, setSending] = useState(false);

  useEffect(() => {
    let live = true;
    campaignsApi
      .preview(campaign._id, Math.min(stage, campaign.stages.length), contactId || null)
      .then((shown) => {
        if (live) {
          setPreview(shown);
          setError(null);
        }
      })
      .catch((caught: unknown) => live && setError(asApiError(caught)));
    return () => {
      live = false;
    };
  }, [campaign._id, campaign.updatedAt, campaign.stages.length, stage, contactId]);

  async function sendTest(event: FormEvent) {
    event.preventDefault();
    setSending(true);
    try {
      await campaignsApi.testSend(campaign._id, to, stage, contactId || null);
      toast.success(`Test of stage ${stage} sent to ${to}.`);
      setError(null);
    } catch (caught) {
      setError(asApiError(caught));
    } finally {
      setSending(false);
    }
  }

  return (
    <Card title="Preview and test" description="The saved stages, as a contact gets them. Save your changes to see them here.">
      <div className="grid gap-4 sm:grid-cols-2">
        <Select label="Preview for" value={contactId} onChange={(event) => setContactId(event.target.value)}>
          <option value="">No contact (fallbacks)</option>
          {(contacts.data ?? []).map((contact) => (
            <option key={contact.id} value={contact.id}>
              {contact.name ? `${contact.name} <${contact.email}>` : contact.email}
            </option>
          ))}
        </Select>
        <Select label="Stage" value={stage} onChange={(event) => setStage(Number(event.target.value))}>
          {Array.from({ length: Math.min(stages, campaign.stages.length) }, (_, index) => (
            <option key={index} value={index + 1}>
              Stage {index + 1}
            </option>
          ))}
        </Select>
      </div>
      {error ? (
        <Alert tone="error" className="mt-4">
          {error.message}
        </Alert>
      ) : null}
      {preview ? (
        <div className="mt-4 overflow-hidden rounded-lg ring-1 ring-zinc-200 dark:ring-zinc-800">
          <dl className="grid grid-cols-[auto_1fr] gap-x-3 gap-y-1 border-b border-zinc-200 bg-zinc-50 px-4 py-3 text-sm dark:border-zinc-800 dark:bg-zinc-950">
            <dt className="text-zinc-600 dark:text-zinc-400">To</dt>
            <dd className="break-all text-zinc-900 dark:text-zinc-100">{preview.email || "—"}</dd>
            <dt className="text-zinc-600 dark:text-zinc-400">Subject</dt>
            <dd className="font-medium break-words text-zinc-900 dark:text-zinc-100" data-testid="preview-subject">
              {preview.subject}
            </dd>
          </dl>
          <iframe title="Message preview" sandbox="allow-same-origin" srcDoc={preview.html} className="h-64 w-full bg-white" />
        </div>
      ) : null}
      <form onSubmit={(event) => void sendTest(event)} className="mt-4 flex flex-wrap items-end gap-3" aria-label="Test send">
        <Input label="Send a test to" type="email" value={to} onChange={(event) => setTo(event.target.value)} className="min-w-64 flex-1" />
        <Button type="submit" variant="secondary" loading={sending}>
          Send test
        </Button>
      </form>
    </Card>
  );
}
