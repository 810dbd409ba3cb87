/**
 * The search box's query language, as the server parses it (GET /api/mail/{mb}/search):
 * `from:`, `to:`, `subject:`, `has:attachment`, `is:unread|read|starred`, `in:<folder>`,
 * `before:`/`after:` (YYYY-MM-DD), "quoted phrases" and free words (all must match).
 */

export const OPERATORS = ["from", "to", "subject", "has", "is", "in", "before", "after"] as const;
export type Operator = (typeof OPERATORS)[number];

export type Term = { operator: Operator | null; value: string; negated?: never };

/** Splits a query into terms; quotes group words (`subject:"big news"`, `"exact phrase"`). */
export function parseQuery(query: string): Term[] {
  const terms: Term[] = [];
  const pattern = /(?:([a-z]+):)?(?:"([^"]*)"?|(\S+))/gi;
  for (const match of query.matchAll(pattern)) {
    const [, name, quoted, bare] = match;
    const lower = name?.toLowerCase();
    if (lower && (OPERATORS as readonly string[]).includes(lower)) {
      terms.push({ operator: lower as Operator, value: quoted ?? bare ?? "" });
    } else {
      const word = name ? `${name}:${quoted ?? bare ?? ""}` : (quoted ?? bare ?? "");
      if (word !== "") terms.push({ operator: null, value: word });
    }
  }
  return terms;
}

function quoteValue(value: string): string {
  return /[\s"]/.test(value) || value === "" ? `"${value.replace(/"/g, "")}"` : value;
}

/** The query text for terms (the inverse of `parseQuery`). */
export function formatQuery(terms: Term[]): string {
  return terms
    .map((term) => (term.operator ? `${term.operator}:${quoteValue(term.value)}` : quoteValue(term.value)))
    .join(" ");
}

/** The query with `operator:value` set (replacing the same operator's value, except `is:`/`has:`). */
export function withTerm(query: string, operator: Operator, value: string): string {
  const terms = parseQuery(query);
  const repeatable = operator === "is" || operator === "has";
  const kept = terms.filter(
    (term) => term.operator !== operator || (repeatable && term.value.toLowerCase() !== value.toLowerCase()),
  );
  return formatQuery([...kept, { operator, value }]);
}

/** The query without any `operator:` term (or only `operator:value`). */
export function withoutTerm(query: string, operator: Operator, value?: string): string {
  return formatQuery(
    parseQuery(query).filter(
      (term) => term.operator !== operator || (value !== undefined && term.value.toLowerCase() !== value.toLowerCase()),
    ),
  );
}

/** Words to highlight in results: free words and phrases, not operator values. */
export function freeWords(query: string): string[] {
  return parseQuery(query)
    .filter((term) => term.operator === null)
    .map((term) => term.value);
}

/** A mistake the server would refuse, said before asking it (null when the query looks fine). */
export function checkQuery(query: string): string | null {
  for (const term of parseQuery(query)) {
    if ((term.operator === "before" || term.operator === "after") && !/^\d{4}-\d{2}-\d{2}$/.test(term.value)) {
      return `${term.operator}: takes a date as YYYY-MM-DD.`;
    }
    if (term.operator === "is" && !["unread", "read", "starred"].includes(term.value.toLowerCase())) {
      return "is: takes unread, read or starred.";
    }
    if (term.operator === "has" && term.value.toLowerCase() !== "attachment") {
      return "has: takes attachment.";
    }
    if (term.operator !== null && term.value === "") return `${term.operator}: needs a value.`;
  }
  return null;
}
