import { useEffect, useMemo, useRef, useState, type ChangeEvent } from "react";
import { Link } from "react-router";
import {
  contactsApi,
  listsApi,
  type ContactImport,
  type CsvColumns,
  type ImportPreview,
} from "../../../api/contacts";
import { ApiError } from "../../../api/client";
import { Alert } from "../../../components/Alert";
import { Button, ButtonLink } from "../../../components/Button";
import { Card, PageHeader } from "../../../components/Card";
import { InlineSelect, Select } from "../../../components/Field";
import { Spinner } from "../../../components/Spinner";
import { formatNumber, plural } from "../../../lib/format";
import { asApiError, useAsync } from "../../../lib/useAsync";
import { TARGETS, initialChoices, mappingOf, pollDelay, progressPercent, type Choice, type Target } from "./importing";

const STEPS = ["Upload", "Map columns", "Options", "Import"] as const;
type Step = 0 | 1 | 2 | 3;

function Stepper({ step }: { step: Step }) {
  return (
    <ol className="mb-6 flex flex-wrap items-center gap-x-2 gap-y-2 text-sm" aria-label="Import steps">
      {STEPS.map((label, index) => {
        const state = index < step ? "done" : index === step ? "current" : "todo";
        return (
          <li key={label} className="flex items-center gap-2" aria-current={state === "current" ? "step" : undefined}>
            <span
              className={`flex size-6 items-center justify-center rounded-full text-xs font-semibold ${
                state === "todo"
                  ? "bg-zinc-100 text-zinc-600 ring-1 ring-zinc-300 ring-inset dark:bg-zinc-800 dark:text-zinc-400 dark:ring-zinc-700"
                  : "bg-indigo-600 text-white dark:bg-indigo-500"
              }`}
              aria-hidden="true"
            >
              {state === "done" ? "✓" : index + 1}
            </span>
            <span className={state === "current" ? "font-semibold text-zinc-900 dark:text-white" : "text-zinc-600 dark:text-zinc-400"}>
              {label}
              {state === "done" ? <span className="sr-only"> (done)</span> : null}
            </span>
            {index < STEPS.length - 1 ? <span className="mx-1 h-px w-6 bg-zinc-300 sm:w-10 dark:bg-zinc-700" aria-hidden="true" /> : null}
          </li>
        );
      })}
    </ol>
  );
}

export default function ImportWizard() {
  const [step, setStep] = useState<Step>(0);
  const [file, setFile] = useState<File | null>(null);
  const [columns, setColumns] = useState<CsvColumns | null>(null);
  const [choices, setChoices] = useState<Choice[]>([]);
  const [listId, setListId] = useState("");
  const [onDuplicate, setOnDuplicate] = useState<"update" | "skip">("update");
  const [job, setJob] = useState<ContactImport | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [pending, setPending] = useState(false);

  const mapping = useMemo(() => (columns ? mappingOf(columns.columns, choices) : {}), [columns, choices]);

  async function pick(event: ChangeEvent<HTMLInputElement>) {
    const chosen = event.target.files?.[0] ?? null;
    event.target.value = "";
    if (!chosen) return;
    setError(null);
    setPending(true);
    try {
      const read = await contactsApi.columns(chosen);
      setFile(chosen);
      setColumns(read);
      setChoices(initialChoices(read.columns, read.guessed));
      setStep(1);
    } catch (caught) {
      setError(asApiError(caught));
    } finally {
      setPending(false);
    }
  }

  async function start() {
    if (!file) return;
    setError(null);
    setPending(true);
    try {
      setJob(await contactsApi.startImport(file, mapping, listId, onDuplicate));
      setStep(3);
    } catch (caught) {
      setError(asApiError(caught));
    } finally {
      setPending(false);
    }
  }

  function restart() {
    setStep(0);
    setFile(null);
    setColumns(null);
    setChoices([]);
    setJob(null);
    setError(null);
  }

  return (
    <>
      <PageHeader
        title="Import contacts"
        description="From a CSV file with a header row, such as a spreadsheet saved as CSV UTF-8."
        back={
          <Link to="/dashboard/contacts" className="text-indigo-700 hover:underline dark:text-indigo-300">
            ← Contacts
          </Link>
        }
      />
      <Stepper step={step} />
      {error ? (
        <Alert tone="error" className="mb-4">
          {error.message}
        </Alert>
      ) : null}
      {step === 0 ? <UploadStep pending={pending} onPick={(event) => void pick(event)} /> : null}
      {step === 1 && columns && file ? (
        <MappingStep
          file={file}
          columns={columns}
          choices={choices}
          mapping={mapping}
          onChange={setChoices}
          onBack={restart}
          onNext={() => setStep(2)}
        />
      ) : null}
      {step === 2 && file ? (
        <OptionsStep
          file={file}
          listId={listId}
          onList={setListId}
          onDuplicate={onDuplicate}
          onDuplicateChange={setOnDuplicate}
          pending={pending}
          onBack={() => setStep(1)}
          onStart={() => void start()}
        />
      ) : null}
      {step === 3 && job ? <ProgressStep initial={job} onAnother={restart} /> : null}
    </>
  );
}

function UploadStep({ pending, onPick }: { pending: boolean; onPick: (event: ChangeEvent<HTMLInputElement>) => void }) {
  return (
    <Card title="Choose a CSV file" description="The first row names the columns; one contact per row after it.">
      {/* The input is inside the label: the whole box opens the file picker and shows the focus. */}
      <label className="flex cursor-pointer flex-col items-center justify-center gap-2 rounded-xl border-2 border-dashed border-zinc-300 px-6 py-10 text-center focus-within:border-indigo-600 focus-within:ring-2 focus-within:ring-indigo-600/30 hover:border-indigo-400 hover:bg-indigo-50/40 dark:border-zinc-700 dark:hover:border-indigo-400 dark:hover:bg-indigo-500/5">
        <input id="csv-file" type="file" accept=".csv,text/csv" className="sr-only" onChange={onPick} disabled={pending} />
        {pending ? (
          <Spinner className="size-6" label="Reading the file" />
        ) : (
          <svg viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="1.8" className="size-8 text-indigo-600 dark:text-indigo-300" aria-hidden="true">
            <path d="M12 16V4m0 0-4 4m4-4 4 4M4 16v3a1 1 0 0 0 1 1h14a1 1 0 0 0 1-1v-3" strokeLinecap="round" strokeLinejoin="round" />
          </svg>
        )}
        <span className="text-sm font-medium text-zinc-900 dark:text-white">Choose a CSV file</span>
        <span className="text-sm text-zinc-600 dark:text-zinc-400">Up to 200 MB. Columns are matched to fields in the next step.</span>
      </label>
      <p className="mt-4 text-sm text-zinc-600 dark:text-zinc-400">
        An email column is required. First name, last name, company, tags (separated by commas or semicolons) and any
        other column become fields you can use in campaigns. A row the import cannot use is reported with its line
        number; the other rows are imported.
      </p>
    </Card>
  );
}

function MappingStep({
  file,
  columns,
  choices,
  mapping,
  onChange,
  onBack,
  onNext,
}: {
  file: File;
  columns: CsvColumns;
  choices: Choice[];
  mapping: Record<string, string>;
  onChange: (choices: Choice[]) => void;
  onBack: () => void;
  onNext: () => void;
}) {
  const key = JSON.stringify(mapping);
  // The server reads the first rows with this mapping: the same rules the import applies.
  const [settledKey, setSettledKey] = useState(key);
  useEffect(() => {
    const timer = window.setTimeout(() => setSettledKey(key), 300);
    return () => window.clearTimeout(timer);
  }, [key]);
  const preview = useAsync<ImportPreview>(() => contactsApi.preview(file, JSON.parse(settledKey)), [file, settledKey]);
  const ready = preview.data !== undefined && !preview.error && !preview.loading && settledKey === key;

  function set(index: number, change: Partial<Choice>) {
    onChange(choices.map((choice, i) => (i === index ? { ...choice, ...change } : choice)));
  }

  return (
    <div className="space-y-6">
      <Card
        title="Match columns to fields"
        description={
          <>
            <span className="font-medium text-zinc-800 dark:text-zinc-200">{file.name}</span> has{" "}
            {plural(columns.columns.length, "column")}. Choose what each one holds.
          </>
        }
        padded={false}
      >
        <div className="overflow-x-auto">
          <table className="min-w-full divide-y divide-zinc-200 text-sm dark:divide-zinc-800" aria-label="Column mapping">
            <thead className="bg-zinc-50 dark:bg-zinc-900/60">
              <tr>
                {["Column", "First values", "Import as"].map((header) => (
                  <th
                    key={header}
                    scope="col"
                    className={`px-4 py-2.5 text-left text-xs font-semibold tracking-wide text-zinc-600 uppercase sm:px-6 dark:text-zinc-400 ${
                      header === "First values" ? "hidden sm:table-cell" : ""
                    }`}
                  >
                    {header}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody className="divide-y divide-zinc-100 dark:divide-zinc-800">
              {columns.columns.map((header, index) => {
                const choice = choices[index]!;
                const samples = columns.rows.map((row) => row[index] ?? "").filter(Boolean).slice(0, 3);
                return (
                  <tr key={`${index}-${header}`}>
                    <th scope="row" className="px-4 py-3 text-left font-medium break-words text-zinc-900 sm:px-6 dark:text-white">
                      {header || <span className="text-zinc-500">(no name)</span>}
                      {/* On a phone the first values go under the column's name. */}
                      <span className="mt-0.5 block max-w-28 truncate text-xs font-normal text-zinc-600 sm:hidden dark:text-zinc-400">
                        {samples.join(", ")}
                      </span>
                    </th>
                    <td className="hidden max-w-xs px-4 py-3 text-zinc-600 sm:table-cell sm:px-6 dark:text-zinc-400">
                      <span className="line-clamp-2 break-words">{samples.length ? samples.join(", ") : "—"}</span>
                    </td>
                    <td className="px-4 py-3 sm:px-6">
                      <div className="flex flex-wrap items-center gap-2">
                        <div className="w-36 sm:w-48">
                          <InlineSelect
                            aria-label={`Import ${header || `column ${index + 1}`} as`}
                            className="w-full"
                            value={choice.target}
                            onChange={(event) => set(index, { target: event.target.value as Target })}
                          >
                            {TARGETS.map((target) => (
                              <option key={target.value} value={target.value}>
                                {target.label}
                              </option>
                            ))}
                          </InlineSelect>
                        </div>
                        {choice.target === "field" ? (
                          <input
                            aria-label={`Custom field name for ${header || `column ${index + 1}`}`}
                            value={choice.field}
                            onChange={(event) => set(index, { field: event.target.value })}
                            className="block w-32 rounded-lg border-0 bg-white px-3 py-1.5 sm:w-40 text-sm text-zinc-900 shadow-sm ring-1 ring-zinc-300 ring-inset focus:ring-2 focus:ring-indigo-600 focus:outline-none focus:ring-inset dark:bg-zinc-900 dark:text-zinc-100 dark:ring-zinc-700"
                          />
                        ) : null}
                      </div>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      </Card>

      <Card title="Preview" description="The first rows as they will be imported." padded={false}>
        {preview.error ? (
          <div className="p-4 sm:px-6">
            <Alert tone="error">{preview.error.message}</Alert>
          </div>
        ) : !preview.data ? (
          <div className="flex justify-center py-8 text-zinc-500">
            <Spinner className="size-5" label="Reading the first rows" />
          </div>
        ) : (
          <PreviewTable preview={preview.data} />
        )}
      </Card>

      <div className="flex justify-between gap-2">
        <Button variant="secondary" onClick={onBack}>
          Choose another file
        </Button>
        <Button onClick={onNext} disabled={!ready}>
          Next
        </Button>
      </div>
    </div>
  );
}

function PreviewTable({ preview }: { preview: ImportPreview }) {
  const cell = "px-4 py-3 sm:px-6";
  return (
    // Focusable: a keyboard scrolls a table wider than a phone.
    <div className="overflow-x-auto" tabIndex={0} role="region" aria-label="Preview of the first rows, scrollable">
      <table className="min-w-full divide-y divide-zinc-200 text-sm dark:divide-zinc-800" aria-label="Preview of the first rows">
        <thead className="bg-zinc-50 dark:bg-zinc-900/60">
          <tr>
            {["Line", "Email", "Name", "Company", "Tags", "Custom fields"].map((header) => (
              <th key={header} scope="col" className={`${cell} py-2.5 text-left text-xs font-semibold tracking-wide text-zinc-600 uppercase dark:text-zinc-400`}>
                {header}
              </th>
            ))}
          </tr>
        </thead>
        <tbody className="divide-y divide-zinc-100 dark:divide-zinc-800">
          {preview.rows.map(({ row, contact, error }) => (
            <tr key={row} className={error ? "bg-red-50/60 dark:bg-red-950/20" : undefined}>
              <td className={`${cell} text-zinc-600 tabular-nums dark:text-zinc-400`}>{row}</td>
              {contact ? (
                <>
                  <td className={`${cell} whitespace-nowrap text-zinc-900 dark:text-white`}>{contact.email}</td>
                  <td className={`${cell} whitespace-nowrap text-zinc-800 dark:text-zinc-200`}>
                    {[contact.firstName, contact.lastName].filter(Boolean).join(" ") || "—"}
                  </td>
                  <td className={`${cell} text-zinc-800 dark:text-zinc-200`}>{contact.company || "—"}</td>
                  <td className={`${cell} text-zinc-800 dark:text-zinc-200`}>{contact.tags.join(", ") || "—"}</td>
                  <td className={`${cell} text-zinc-800 dark:text-zinc-200`}>
                    {Object.entries(contact.fields)
                      .map(([name, value]) => `${name}: ${String(value)}`)
                      .join(", ") || "—"}
                  </td>
                </>
              ) : (
                <td colSpan={5} className={`${cell} text-red-800 dark:text-red-300`}>
                  Not imported: {error}
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      {preview.rows.length === 0 ? <p className="p-4 text-sm text-zinc-600 sm:px-6 dark:text-zinc-400">The file has no rows after its header.</p> : null}
    </div>
  );
}

function OptionsStep({
  file,
  listId,
  onList,
  onDuplicate,
  onDuplicateChange,
  pending,
  onBack,
  onStart,
}: {
  file: File;
  listId: string;
  onList: (id: string) => void;
  onDuplicate: "update" | "skip";
  onDuplicateChange: (value: "update" | "skip") => void;
  pending: boolean;
  onBack: () => void;
  onStart: () => void;
}) {
  const lists = useAsync(() => listsApi.list(), []);
  const [newName, setNewName] = useState("");
  const [creating, setCreating] = useState(false);
  const [createError, setCreateError] = useState<string | null>(null);
  const staticLists = (lists.data ?? []).filter((list) => list.filter === null);

  async function createList() {
    setCreating(true);
    setCreateError(null);
    try {
      const made = await listsApi.create(newName.trim());
      await lists.reload();
      onList(made._id);
      setNewName("");
    } catch (caught) {
      setCreateError(asApiError(caught).message);
    } finally {
      setCreating(false);
    }
  }

  return (
    <div className="space-y-6">
      <Card title="Import options" description={`${file.name} · ${formatNumber(file.size)} bytes`}>
        <div className="max-w-xl space-y-6">
          <div>
            <Select
              label="Add the contacts to a list"
              value={listId}
              onChange={(event) => onList(event.target.value)}
              hint="Optional. Every imported contact joins this list."
              error={lists.error?.message}
            >
              <option value="">No list</option>
              {staticLists.map((list) => (
                <option key={list._id} value={list._id}>
                  {list.name} ({plural(list.size, "contact")})
                </option>
              ))}
            </Select>
            <form
              className="mt-3"
              onSubmit={(event) => {
                event.preventDefault();
                void createList();
              }}
            >
              <div className="flex gap-2">
                <input
                  aria-label="New list name"
                  placeholder="Or name a new list"
                  value={newName}
                  onChange={(event) => setNewName(event.target.value)}
                  aria-invalid={createError ? true : undefined}
                  aria-describedby={createError ? "new-list-error" : undefined}
                  className="block h-10 min-w-0 flex-1 rounded-lg border-0 bg-white px-3 text-sm text-zinc-900 shadow-sm ring-1 ring-zinc-300 ring-inset placeholder:text-zinc-500 focus:ring-2 focus:ring-indigo-600 focus:outline-none focus:ring-inset dark:bg-zinc-900 dark:text-zinc-100 dark:ring-zinc-700 dark:placeholder:text-zinc-400"
                />
                <Button type="submit" variant="secondary" loading={creating} disabled={newName.trim() === ""}>
                  Create list
                </Button>
              </div>
              {createError ? (
                <p id="new-list-error" role="alert" className="mt-1.5 text-sm text-red-700 dark:text-red-400">
                  {createError}
                </p>
              ) : null}
            </form>
          </div>
          <fieldset>
            <legend className="text-sm font-medium text-zinc-900 dark:text-zinc-100">When an address is already a contact</legend>
            <div className="mt-2 space-y-2 text-sm">
              {(
                [
                  ["update", "Update the contact", "Filled cells replace its values; tags and custom fields are added."],
                  ["skip", "Keep the contact as it is", "The row is counted as skipped."],
                ] as const
              ).map(([value, label, hint]) => (
                <label key={value} className="flex items-start gap-3">
                  <input
                    type="radio"
                    name="on-duplicate"
                    value={value}
                    checked={onDuplicate === value}
                    onChange={() => onDuplicateChange(value)}
                    className="mt-0.5 size-4 shrink-0 accent-indigo-600"
                  />
                  <span>
                    <span className="font-medium text-zinc-900 dark:text-zinc-100">{label}</span>
                    <span className="block text-zinc-600 dark:text-zinc-400">{hint}</span>
                  </span>
                </label>
              ))}
            </div>
          </fieldset>
          <p className="text-sm text-zinc-600 dark:text-zinc-400">
            An import never subscribes again someone who unsubscribed, bounced or complained.
          </p>
        </div>
      </Card>
      <div className="flex justify-between gap-2">
        <Button variant="secondary" onClick={onBack} disabled={pending}>
          Back
        </Button>
        <Button onClick={onStart} loading={pending}>
          Start import
        </Button>
      </div>
    </div>
  );
}

function ProgressStep({ initial, onAnother }: { initial: ContactImport; onAnother: () => void }) {
  const [job, setJob] = useState(initial);
  const [error, setError] = useState<string | null>(null);
  const attempt = useRef(0);

  useEffect(() => {
    if (job.status !== "running") return;
    const timer = window.setTimeout(async () => {
      try {
        const next = await contactsApi.importStatus(job._id);
        attempt.current += 1;
        setError(null);
        setJob(next);
      } catch (caught) {
        setError(asApiError(caught).message);
        attempt.current += 1;
        setJob((current) => ({ ...current }));
      }
    }, pollDelay(attempt.current));
    return () => window.clearTimeout(timer);
  }, [job]);

  const percent = progressPercent(job);
  const running = job.status === "running";

  return (
    <div className="space-y-6">
      <Card title={running ? "Importing…" : job.status === "done" ? "Import finished" : "The import stopped"}>
        <div className="space-y-3" aria-live="polite">
          <div
            role="progressbar"
            aria-label="Import progress"
            aria-valuemin={0}
            aria-valuemax={100}
            aria-valuenow={percent}
            className="h-2.5 overflow-hidden rounded-full bg-zinc-100 dark:bg-zinc-800"
          >
            <div
              className={`h-full rounded-full transition-[width] ${job.status === "failed" ? "bg-red-600" : "bg-indigo-600 dark:bg-indigo-500"}`}
              style={{ width: `${percent}%` }}
            />
          </div>
          <p className="text-sm text-zinc-700 dark:text-zinc-300">
            {percent}% · {plural(job.rowsDone, "row")} read
          </p>
          {error ? <Alert tone="warning">{error}</Alert> : null}
          {job.status === "failed" ? <Alert tone="error">{job.failure}</Alert> : null}
        </div>
        {!running ? (
          <dl className="mt-5 grid grid-cols-2 gap-3 sm:grid-cols-4">
            {(
              [
                ["Added", job.created],
                ["Updated", job.updated],
                ["Skipped", job.skipped],
                ["Not imported", job.failed],
              ] as const
            ).map(([label, count]) => (
              <div key={label} className="rounded-lg bg-zinc-50 px-4 py-3 ring-1 ring-zinc-200 ring-inset dark:bg-zinc-800/50 dark:ring-zinc-700">
                <dt className="text-xs font-medium text-zinc-600 dark:text-zinc-400">{label}</dt>
                <dd className={`mt-1 text-xl font-semibold tabular-nums ${label === "Not imported" && count > 0 ? "text-red-700 dark:text-red-400" : "text-zinc-900 dark:text-white"}`}>
                  {formatNumber(count)}
                </dd>
              </div>
            ))}
          </dl>
        ) : null}
      </Card>

      {!running && job.errors.length > 0 ? (
        <Card
          title="Rows not imported"
          description={
            job.failed > job.errors.length
              ? `The first ${formatNumber(job.errors.length)} of ${formatNumber(job.failed)}; fix them in the file and import it again.`
              : "Fix them in the file and import it again: rows already imported are found as duplicates."
          }
          padded={false}
        >
          <div className="overflow-x-auto" tabIndex={0} role="region" aria-label="Rows not imported, scrollable">
            <table className="min-w-full divide-y divide-zinc-200 text-sm dark:divide-zinc-800" aria-label="Rows not imported">
              <thead className="bg-zinc-50 dark:bg-zinc-900/60">
                <tr>
                  <th scope="col" className="w-24 px-4 py-2.5 text-left text-xs font-semibold tracking-wide text-zinc-600 uppercase sm:px-6 dark:text-zinc-400">
                    Line
                  </th>
                  <th scope="col" className="px-4 py-2.5 text-left text-xs font-semibold tracking-wide text-zinc-600 uppercase sm:px-6 dark:text-zinc-400">
                    Reason
                  </th>
                </tr>
              </thead>
              <tbody className="divide-y divide-zinc-100 dark:divide-zinc-800">
                {job.errors.map((problem) => (
                  <tr key={problem.row}>
                    <td className="px-4 py-3 text-zinc-900 tabular-nums sm:px-6 dark:text-white">{problem.row}</td>
                    <td className="px-4 py-3 text-zinc-800 sm:px-6 dark:text-zinc-200">{problem.reason}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </Card>
      ) : null}

      {!running ? (
        <div className="flex flex-wrap justify-end gap-2">
          <Button variant="secondary" onClick={onAnother}>
            Import another file
          </Button>
          <ButtonLink to="/dashboard/contacts">View contacts</ButtonLink>
        </div>
      ) : null}
    </div>
  );
}
