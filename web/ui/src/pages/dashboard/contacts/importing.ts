/**
 * The import wizard's own logic: the column choices a person makes (starting from what the server
 * would guess), the mapping they send, and how far an import has got. Whether a mapping is valid
 * is the server's to say: its preview answers with the reason.
 */
import type { ContactImport } from "../../../api/contacts";

export type Target = "email" | "first_name" | "last_name" | "company" | "tags" | "status" | "field" | "skip";

export type Choice = { target: Target; field: string };

export const TARGETS: { value: Target; label: string }[] = [
  { value: "email", label: "Email" },
  { value: "first_name", label: "First name" },
  { value: "last_name", label: "Last name" },
  { value: "company", label: "Company" },
  { value: "tags", label: "Tags" },
  { value: "status", label: "Status" },
  { value: "field", label: "Custom field" },
  { value: "skip", label: "Don't import" },
];

const FIELD_PREFIX = "field:";
const STANDARD = new Set<Target>(["email", "first_name", "last_name", "company", "tags", "status"]);

/**
 * A server target ("email", "field:plan", "" for left out) as a choice in the form. A custom
 * field starts with the header as its name: the server spells it as a field name.
 */
export function choiceOf(target: string | undefined, header: string): Choice {
  if (target === undefined || target === "") return { target: "skip", field: header.trim() };
  if (target.startsWith(FIELD_PREFIX)) return { target: "field", field: target.slice(FIELD_PREFIX.length) };
  if (STANDARD.has(target as Target)) return { target: target as Target, field: header.trim() };
  return { target: "field", field: header.trim() };
}

/** The choices to start from: what the server would do with each column unmapped. */
export function initialChoices(columns: string[], guessed: Record<string, string>): Choice[] {
  return columns.map((header) => choiceOf(guessed[header], header));
}

/** The mapping sent with the preview and the import: every column named, header → target. */
export function mappingOf(columns: string[], choices: Choice[]): Record<string, string> {
  const mapping: Record<string, string> = {};
  columns.forEach((header, index) => {
    const choice = choices[index] ?? { target: "skip", field: "" };
    if (choice.target === "skip") mapping[header] = "";
    else if (choice.target === "field") mapping[header] = FIELD_PREFIX + choice.field.trim();
    else mapping[header] = choice.target;
  });
  return mapping;
}

/** How far the import is, 0–100, from the bytes read of the file (rows vary in length). */
export function progressPercent(job: Pick<ContactImport, "status" | "bytesRead" | "totalBytes">): number {
  if (job.status === "done") return 100;
  if (job.totalBytes <= 0) return 0;
  return Math.min(99, Math.floor((job.bytesRead / job.totalBytes) * 100));
}

/** How long to wait before asking for an import's progress again: soon at first, then less often. */
export function pollDelay(attempt: number): number {
  return Math.min(2000, 250 * 2 ** Math.min(attempt, 3));
}
