/** Ready-to-paste "send an email" examples for the API explorer, filled with the chosen domain. */

export const KEY_PLACEHOLDER = "dm_live_…";

export type SnippetLanguage = "curl" | "node" | "python";

export interface SnippetInput {
  /** Where /v1 is served: the page's own origin, since one listener serves both. */
  baseUrl: string;
  /** The key to show: a key just created on this page, or the placeholder. */
  apiKey: string;
  /** A mailbox of the chosen domain, or hello@<domain> when it has none yet. */
  from: string;
}

export const SNIPPET_LANGUAGES: { id: SnippetLanguage; label: string }[] = [
  { id: "curl", label: "cURL" },
  { id: "node", label: "Node.js" },
  { id: "python", label: "Python" },
];

const SAMPLE = {
  to: "recipient@example.com",
  subject: "Hello from Mailmark!",
  html: "<p>It works!</p>",
};

/** A POSIX shell single-quoted word: the only character needing care is the quote itself. */
export function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** A double-quoted string literal valid in both JavaScript and Python (JSON's escapes are). */
function literal(text: string): string {
  return JSON.stringify(text);
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, "");
}

export function curlSnippet({ baseUrl, apiKey, from }: SnippetInput): string {
  // Pretty-printed and indented under the -d, so the body reads as it would in a file.
  const body = JSON.stringify({ from, to: [SAMPLE.to], subject: SAMPLE.subject, html: SAMPLE.html }, null, 2).replace(
    /\n/g,
    "\n  ",
  );
  return [
    `curl -X POST ${shellQuote(`${trimSlash(baseUrl)}/v1/send`)} \\`,
    `  -H ${shellQuote(`Authorization: Bearer ${apiKey}`)} \\`,
    `  -H 'Content-Type: application/json' \\`,
    `  -d ${shellQuote(body)}`,
  ].join("\n");
}

export function nodeSnippet({ baseUrl, apiKey, from }: SnippetInput): string {
  return [
    `// npm install mailmark-sdk`,
    `import { Mailmark } from "mailmark-sdk";`,
    ``,
    `const client = new Mailmark(${literal(apiKey)}, { baseUrl: ${literal(trimSlash(baseUrl))} });`,
    ``,
    `const { messageId, status } = await client.send({`,
    `  from: ${literal(from)},`,
    `  to: ${literal(SAMPLE.to)},`,
    `  subject: ${literal(SAMPLE.subject)},`,
    `  html: ${literal(SAMPLE.html)},`,
    `});`,
    `console.log(messageId, status);`,
  ].join("\n");
}

export function pythonSnippet({ baseUrl, apiKey, from }: SnippetInput): string {
  return [
    `# mailmark-sdk for Python: pip install ./sdk/python from a Mailmark checkout`,
    `from mailmark_sdk import Mailmark`,
    ``,
    `with Mailmark(${literal(apiKey)}, base_url=${literal(trimSlash(baseUrl))}) as client:`,
    `    result = client.send(`,
    `        from_=${literal(from)},`,
    `        to=${literal(SAMPLE.to)},`,
    `        subject=${literal(SAMPLE.subject)},`,
    `        html=${literal(SAMPLE.html)},`,
    `    )`,
    `    print(result.message_id, result.status)`,
  ].join("\n");
}

export function snippet(language: SnippetLanguage, input: SnippetInput): string {
  switch (language) {
    case "curl":
      return curlSnippet(input);
    case "node":
      return nodeSnippet(input);
    case "python":
      return pythonSnippet(input);
  }
}

/** The sender the examples use: the first mailbox of the domain, else a plausible address on it. */
export function sampleSender(domain: string, mailboxes: readonly { address: string }[]): string {
  return mailboxes[0]?.address ?? `hello@${domain}`;
}
