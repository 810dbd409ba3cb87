/** Address chips: what was typed or pasted in To/Cc/Bcc, split into addresses. */
import type { Address } from "../../../api/mail";

export type Chip = { name: string; address: string; valid: boolean };

const EMAIL = /^[^\s@<>(),;:"]+@[^\s@<>(),;:"]+\.[^\s@<>(),;:"]+$/;

export function isEmail(value: string): boolean {
  return EMAIL.test(value);
}

/** One entry: `a@b.c`, `Name <a@b.c>`, `"Last, First" <a@b.c>`. */
export function parseOne(raw: string): Chip | null {
  const text = raw.trim().replace(/^[,;]+|[,;]+$/g, "").trim();
  if (text === "") return null;
  const angle = /^(.*)<([^<>]+)>$/.exec(text);
  if (angle) {
    const name = angle[1]!.trim().replace(/^"(.*)"$/, "$1").trim();
    const address = angle[2]!.trim();
    return { name, address, valid: isEmail(address) };
  }
  const address = text.replace(/^mailto:/i, "");
  return { name: "", address, valid: isEmail(address) };
}

/** A list separated by commas, semicolons or new lines; commas inside quotes or <> are kept. */
export function parseAddressList(raw: string): Chip[] {
  const chips: Chip[] = [];
  let current = "";
  let quoted = false;
  let angled = false;
  for (const char of raw) {
    if (char === '"') quoted = !quoted;
    else if (char === "<" && !quoted) angled = true;
    else if (char === ">" && !quoted) angled = false;
    if ((char === "," || char === ";" || char === "\n") && !quoted && !angled) {
      const chip = parseOne(current);
      if (chip) chips.push(chip);
      current = "";
      continue;
    }
    current += char;
  }
  const last = parseOne(current);
  if (last) chips.push(last);
  return chips;
}

/** How a chip goes to the server: `Name <a@b.c>` or the bare address. */
export function formatChip(chip: Address): string {
  if (!chip.name) return chip.address;
  const name = /[",;<>@()]/.test(chip.name) ? `"${chip.name.replace(/"/g, "")}"` : chip.name;
  return `${name} <${chip.address}>`;
}

/** Adds chips, leaving out addresses already there (case-insensitive). */
export function addChips(current: Chip[], added: Chip[]): Chip[] {
  const seen = new Set(current.map((chip) => chip.address.toLowerCase()));
  const result = [...current];
  for (const chip of added) {
    const key = chip.address.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    result.push(chip);
  }
  return result;
}

export function displayName(address: Address | null | undefined): string {
  if (!address) return "(unknown sender)";
  return address.name || address.address;
}
