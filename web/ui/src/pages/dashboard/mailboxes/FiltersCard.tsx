import { useEffect, useId, useState, type FormEvent } from "react";
import {
  filtersApi,
  type FilterRule,
  type Filters,
  type RuleAction,
  type RuleField,
  type RuleOperator,
} from "../../../api/filters";
import type { Mailbox } from "../../../api/mailboxes";
import { Alert } from "../../../components/Alert";
import { Button } from "../../../components/Button";
import { Card } from "../../../components/Card";
import { InlineSelect, Textarea } from "../../../components/Field";
import { Spinner } from "../../../components/Spinner";
import { useToast } from "../../../components/Toast";
import { formatDateTime } from "../../../lib/format";
import { useAction, useAsync } from "../../../lib/useAsync";

const FIELDS: { value: RuleField; label: string }[] = [
  { value: "from", label: "From" },
  { value: "to", label: "To" },
  { value: "subject", label: "Subject" },
  { value: "header", label: "Header…" },
];
const OPERATORS: { value: RuleOperator; label: string }[] = [
  { value: "contains", label: "contains" },
  { value: "is", label: "is" },
  { value: "matches", label: "matches (* and ?)" },
];
const ACTIONS: { value: RuleAction; label: string }[] = [
  { value: "move", label: "Move to folder" },
  { value: "read", label: "Mark as read" },
  { value: "flag", label: "Flag" },
  { value: "forward", label: "Forward to" },
  { value: "discard", label: "Discard" },
];
const TARGET_LABEL: Partial<Record<RuleAction, string>> = { move: "Folder", forward: "Address" };

const rowInput =
  "block w-full min-w-0 rounded-lg border-0 bg-white px-3 py-1.5 text-sm text-zinc-900 shadow-sm ring-1 ring-inset " +
  "ring-zinc-300 placeholder:text-zinc-500 focus:ring-2 focus:ring-inset focus:ring-indigo-600 focus:outline-none " +
  "dark:bg-zinc-900 dark:text-zinc-100 dark:ring-zinc-700 dark:placeholder:text-zinc-400 dark:focus:ring-indigo-400";

type Mode = "rules" | "sieve";

function newRule(): FilterRule {
  return { field: "from", header: "", operator: "contains", value: "", action: "move", target: "" };
}

/**
 * Server-side filters applied when mail arrives: simple "if … then …" rules, which the server
 * stores as a Sieve script, or the Sieve script itself. The server checks every script and
 * generates the Sieve for rules; this only shows what it answers.
 */
export function FiltersCard({ mailbox }: { mailbox: Mailbox }) {
  const loaded = useAsync(() => filtersApi.get(mailbox.address), [mailbox.address]);

  return (
    <div role="region" aria-label="Filters">
      <Card
        title="Filters"
        description="Rules applied to incoming mail, top to bottom, before it reaches the inbox. They are kept as a Sieve script (RFC 5228)."
      >
        {loaded.error ? <Alert tone="error">{loaded.error.message}</Alert> : null}
        {loaded.data ? (
          <FiltersEditor mailbox={mailbox} filters={loaded.data} onSaved={(saved) => loaded.setData(saved)} />
        ) : loaded.loading ? (
          <div className="flex justify-center py-6">
            <Spinner />
          </div>
        ) : null}
      </Card>
    </div>
  );
}

function FiltersEditor({
  mailbox,
  filters,
  onSaved,
}: {
  mailbox: Mailbox;
  filters: Filters;
  onSaved: (filters: Filters) => void;
}) {
  const [mode, setMode] = useState<Mode>(filters.rules === null ? "sieve" : "rules");
  const [rules, setRules] = useState<FilterRule[]>(filters.rules ?? []);
  const [script, setScript] = useState(filters.script);
  const [checked, setChecked] = useState<string | null>(null);
  const saveRules = useAction(() => filtersApi.saveRules(mailbox.address, rules));
  const saveScript = useAction(() => filtersApi.saveScript(mailbox.address, script));
  const check = useAction(() => filtersApi.check(mailbox.address, script));
  const toast = useToast();
  const groupId = useId();

  useEffect(() => {
    setRules(filters.rules ?? []);
    setScript(filters.script);
  }, [filters]);

  async function submitRules(event: FormEvent) {
    event.preventDefault();
    const saved = await saveRules.run();
    if (saved) {
      onSaved(saved);
      toast.success("Filters saved.");
    }
  }

  async function submitScript(event: FormEvent) {
    event.preventDefault();
    setChecked(null);
    const saved = await saveScript.run();
    if (saved) {
      onSaved(saved);
      setMode(saved.rules === null ? "sieve" : mode);
      toast.success("Sieve script saved.");
    }
  }

  async function runCheck() {
    const result = await check.run();
    if (result) setChecked(result.valid ? "The script is valid." : `Line ${result.line}: ${result.message}`);
  }

  function update(index: number, change: Partial<FilterRule>) {
    setRules((current) => current.map((rule, i) => (i === index ? { ...rule, ...change } : rule)));
  }

  const scriptError = saveScript.error?.field === "script" ? saveScript.error.message : null;

  return (
    <div className="space-y-4">
      {filters.lastError ? (
        <Alert tone="warning" title="A message could not be filtered and was kept in the inbox">
          <p className="break-words">{filters.lastError}</p>
          {filters.lastErrorAt ? (
            <p className="mt-1 text-xs opacity-80">{formatDateTime(filters.lastErrorAt)}</p>
          ) : null}
        </Alert>
      ) : null}
      <fieldset>
        <legend className="sr-only">Edit as</legend>
        <div className="inline-flex rounded-lg bg-zinc-100 p-1 dark:bg-zinc-800">
          {(
            [
              ["rules", "Rules"],
              ["sieve", "Edit as Sieve"],
            ] as const
          ).map(([value, label]) => (
            <label
              key={value}
              className={`relative cursor-pointer rounded-md px-3 py-1.5 text-sm font-medium has-[:focus-visible]:outline-2 has-[:focus-visible]:outline-indigo-600 ${
                mode === value
                  ? "bg-white text-zinc-900 shadow-sm dark:bg-zinc-950 dark:text-white"
                  : "text-zinc-700 hover:text-zinc-900 dark:text-zinc-300 dark:hover:text-white"
              }`}
            >
              <input
                type="radio"
                name={`${groupId}-mode`}
                value={value}
                checked={mode === value}
                onChange={() => setMode(value)}
                className="absolute inset-0 m-0 size-full cursor-pointer opacity-0"
              />
              {label}
            </label>
          ))}
        </div>
      </fieldset>

      {mode === "rules" ? (
        <form onSubmit={submitRules} className="space-y-4" aria-label="Filter rules">
          {filters.rules === null ? (
            <Alert tone="info">
              These filters were written as a Sieve script, so they are shown as text only. Saving rules here replaces
              the script.
            </Alert>
          ) : null}
          {saveRules.error ? <Alert tone="error">{saveRules.error.message}</Alert> : null}
          {rules.length === 0 ? (
            <p className="text-sm text-zinc-600 dark:text-zinc-400">No rules yet: all mail goes to the inbox.</p>
          ) : (
            <ol className="space-y-3">
              {rules.map((rule, index) => (
                <RuleRow
                  key={index}
                  index={index}
                  rule={rule}
                  onChange={(change) => update(index, change)}
                  onRemove={() => setRules((current) => current.filter((_, i) => i !== index))}
                />
              ))}
            </ol>
          )}
          <div className="flex flex-wrap justify-between gap-2">
            <Button variant="secondary" onClick={() => setRules((current) => [...current, newRule()])}>
              Add rule
            </Button>
            <Button type="submit" loading={saveRules.pending}>
              Save filters
            </Button>
          </div>
        </form>
      ) : (
        <form onSubmit={submitScript} className="space-y-4" aria-label="Sieve script editor">
          {saveScript.error && !scriptError ? <Alert tone="error">{saveScript.error.message}</Alert> : null}
          <Textarea
            label="Sieve script"
            value={script}
            onChange={(event) => {
              setScript(event.target.value);
              setChecked(null);
            }}
            rows={14}
            maxLength={65_536}
            spellCheck={false}
            autoCapitalize="off"
            autoCorrect="off"
            error={scriptError}
            hint="Supported: fileinto, redirect (:copy), vacation, imap4flags, envelope, body, mailbox (:create)."
            className="[&_textarea]:font-mono [&_textarea]:text-xs"
          />
          {checked ? (
            <Alert tone={checked.startsWith("Line") ? "error" : "success"}>{checked}</Alert>
          ) : null}
          {check.error ? <Alert tone="error">{check.error.message}</Alert> : null}
          <div className="flex flex-wrap justify-end gap-2">
            <Button variant="secondary" loading={check.pending} onClick={() => void runCheck()}>
              Check
            </Button>
            <Button type="submit" loading={saveScript.pending}>
              Save script
            </Button>
          </div>
        </form>
      )}
    </div>
  );
}

function RuleRow({
  index,
  rule,
  onChange,
  onRemove,
}: {
  index: number;
  rule: FilterRule;
  onChange: (change: Partial<FilterRule>) => void;
  onRemove: () => void;
}) {
  const n = index + 1;
  const targetLabel = TARGET_LABEL[rule.action];
  return (
    <li
      className="flex flex-wrap items-center gap-2 rounded-lg bg-zinc-50 p-3 ring-1 ring-zinc-200 dark:bg-zinc-950 dark:ring-zinc-800"
      aria-label={`Rule ${n}`}
    >
      <span className="text-sm font-medium text-zinc-700 dark:text-zinc-300">If</span>
      <div className="flex-none">
        <InlineSelect
          aria-label={`Rule ${n} field`}
          value={rule.field}
          onChange={(event) => onChange({ field: event.target.value as RuleField })}
        >
          {FIELDS.map((option) => (
            <option key={option.value} value={option.value}>
              {option.label}
            </option>
          ))}
        </InlineSelect>
      </div>
      {rule.field === "header" ? (
        <input
          aria-label={`Rule ${n} header name`}
          placeholder="List-Id"
          value={rule.header}
          maxLength={100}
          onChange={(event) => onChange({ header: event.target.value })}
          className={`${rowInput} w-32 sm:w-36`}
        />
      ) : null}
      <div className="flex-none">
        <InlineSelect
          aria-label={`Rule ${n} comparison`}
          value={rule.operator}
          onChange={(event) => onChange({ operator: event.target.value as RuleOperator })}
        >
          {OPERATORS.map((option) => (
            <option key={option.value} value={option.value}>
              {option.label}
            </option>
          ))}
        </InlineSelect>
      </div>
      <input
        aria-label={`Rule ${n} value`}
        value={rule.value}
        maxLength={1000}
        required
        onChange={(event) => onChange({ value: event.target.value })}
        className={`${rowInput} flex-1 basis-40`}
      />
      <span className="text-sm font-medium text-zinc-700 dark:text-zinc-300">then</span>
      <div className="flex-none">
        <InlineSelect
          aria-label={`Rule ${n} action`}
          value={rule.action}
          onChange={(event) => onChange({ action: event.target.value as RuleAction })}
        >
          {ACTIONS.map((option) => (
            <option key={option.value} value={option.value}>
              {option.label}
            </option>
          ))}
        </InlineSelect>
      </div>
      {targetLabel ? (
        <input
          aria-label={`Rule ${n} ${targetLabel.toLowerCase()}`}
          placeholder={rule.action === "move" ? "Folder name" : "name@example.com"}
          type={rule.action === "forward" ? "email" : "text"}
          value={rule.target}
          maxLength={1000}
          required
          onChange={(event) => onChange({ target: event.target.value })}
          className={`${rowInput} flex-1 basis-40`}
        />
      ) : null}
      <Button variant="ghost" size="sm" aria-label={`Remove rule ${n}`} onClick={onRemove}>
        Remove
      </Button>
    </li>
  );
}
