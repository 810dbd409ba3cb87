import { useId, useRef, useState, type KeyboardEvent } from "react";
import { Card } from "../../../components/Card";
import { CopyButton } from "../../../components/CopyButton";
import { SNIPPET_LANGUAGES, snippet, type SnippetLanguage } from "./snippets";

/** Send-email examples in cURL, Node.js and Python, filled with the domain, a sender and a key. */
export function ApiExplorer({
  baseUrl,
  from,
  apiKey,
  keyIsReal,
}: {
  baseUrl: string;
  from: string;
  apiKey: string;
  /** The examples hold a key created on this page (a secret) rather than the placeholder. */
  keyIsReal: boolean;
}) {
  const [language, setLanguage] = useState<SnippetLanguage>("curl");
  const tabs = useRef<(HTMLButtonElement | null)[]>([]);
  const id = useId();
  const code = snippet(language, { baseUrl, from, apiKey });
  const current = SNIPPET_LANGUAGES.findIndex((item) => item.id === language);

  function onKeyDown(event: KeyboardEvent) {
    const step = event.key === "ArrowRight" ? 1 : event.key === "ArrowLeft" ? -1 : 0;
    if (step === 0) return;
    event.preventDefault();
    const next = (current + step + SNIPPET_LANGUAGES.length) % SNIPPET_LANGUAGES.length;
    setLanguage(SNIPPET_LANGUAGES[next]!.id);
    tabs.current[next]?.focus();
  }

  return (
    <Card
      title="Send your first email"
      description={
        <>
          Paste one of these to send through the REST API, with cURL or the mailmark-sdk package for Node.js or
          Python.{" "}
          {keyIsReal
            ? "They hold the key you just created: treat them as secret."
            : "Replace dm_live_… with one of your API keys."}{" "}
          Every route is in the{" "}
          <a href="/schema" className="font-medium text-indigo-700 underline dark:text-indigo-300">
            API reference
          </a>
          .
        </>
      }
    >
      <div className="flex flex-wrap items-end justify-between gap-3 border-b border-zinc-200 dark:border-zinc-800">
        <div role="tablist" aria-label="Language" className="-mb-px flex gap-4 overflow-x-auto" onKeyDown={onKeyDown}>
          {SNIPPET_LANGUAGES.map((item, index) => (
            <button
              key={item.id}
              ref={(node) => {
                tabs.current[index] = node;
              }}
              type="button"
              role="tab"
              id={`${id}-${item.id}`}
              aria-selected={item.id === language}
              aria-controls={`${id}-panel`}
              tabIndex={item.id === language ? 0 : -1}
              onClick={() => setLanguage(item.id)}
              className={`border-b-2 pb-2.5 text-sm font-medium whitespace-nowrap ${
                item.id === language
                  ? "border-indigo-600 text-indigo-700 dark:border-indigo-400 dark:text-indigo-300"
                  : "border-transparent text-zinc-600 hover:text-zinc-900 dark:text-zinc-400 dark:hover:text-white"
              }`}
            >
              {item.label}
            </button>
          ))}
        </div>
        <div className="pb-2">
          <CopyButton value={code} label={`Copy the ${SNIPPET_LANGUAGES[current]!.label} example`} />
        </div>
      </div>
      <div role="tabpanel" id={`${id}-panel`} aria-labelledby={`${id}-${language}`} className="mt-4">
        <pre
          tabIndex={0}
          className="overflow-x-auto rounded-lg bg-zinc-950 p-4 font-mono text-[13px] leading-relaxed text-zinc-100 ring-1 ring-zinc-800"
        >
          <code>{code}</code>
        </pre>
      </div>
    </Card>
  );
}
