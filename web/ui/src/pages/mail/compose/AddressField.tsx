import { useEffect, useId, useRef, useState, type ClipboardEvent, type KeyboardEvent } from "react";
import type { Id } from "../../../api/client";
import { mailApi, type Address } from "../../../api/mail";
import { addChips, parseAddressList, type Chip } from "../lib/addresses";

/** To, Cc or Bcc: addresses as chips, with suggestions from the mailbox's correspondents. */
export function AddressField({
  label,
  mailboxId,
  chips,
  onChange,
  autoFocus = false,
}: {
  label: string;
  mailboxId: Id;
  chips: Chip[];
  onChange: (chips: Chip[]) => void;
  autoFocus?: boolean;
}) {
  const [text, setText] = useState("");
  const [suggestions, setSuggestions] = useState<Address[]>([]);
  const [active, setActive] = useState(0);
  const input = useRef<HTMLInputElement>(null);
  const inputId = useId();
  const listId = useId();

  useEffect(() => {
    const query = text.trim();
    if (query.length < 1) {
      setSuggestions([]);
      return;
    }
    const controller = new AbortController();
    const timer = window.setTimeout(() => {
      mailApi
        .contacts(mailboxId, query, controller.signal)
        .then((found) => {
          const taken = new Set(chips.map((chip) => chip.address.toLowerCase()));
          setSuggestions(found.filter((address) => !taken.has(address.address.toLowerCase())));
          setActive(0);
        })
        .catch(() => setSuggestions([]));
    }, 120);
    return () => {
      controller.abort();
      window.clearTimeout(timer);
    };
  }, [text, mailboxId, chips]);

  function commit(raw: string) {
    const added = parseAddressList(raw);
    if (added.length > 0) onChange(addChips(chips, added));
    setText("");
    setSuggestions([]);
  }

  function pick(address: Address) {
    onChange(addChips(chips, [{ ...address, valid: true }]));
    setText("");
    setSuggestions([]);
    input.current?.focus();
  }

  function onKeyDown(event: KeyboardEvent<HTMLInputElement>) {
    if (suggestions.length > 0 && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
      event.preventDefault();
      setActive((index) => (index + (event.key === "ArrowDown" ? 1 : -1) + suggestions.length) % suggestions.length);
      return;
    }
    if (event.key === "Enter" || event.key === "Tab" || event.key === "," || event.key === ";") {
      if (suggestions.length > 0 && event.key !== "," && event.key !== ";") {
        event.preventDefault();
        pick(suggestions[active]!);
        return;
      }
      if (text.trim() !== "") {
        if (event.key !== "Tab") event.preventDefault();
        commit(text);
      }
      return;
    }
    if (event.key === "Escape" && suggestions.length > 0) {
      event.stopPropagation();
      setSuggestions([]);
      return;
    }
    if (event.key === "Backspace" && text === "" && chips.length > 0) {
      onChange(chips.slice(0, -1));
    }
  }

  function onPaste(event: ClipboardEvent<HTMLInputElement>) {
    const pasted = event.clipboardData.getData("text");
    if (/[,;\n]/.test(pasted) || parseAddressList(pasted).some((chip) => chip.valid)) {
      event.preventDefault();
      commit(text + pasted);
    }
  }

  const expanded = suggestions.length > 0;

  return (
    <div className="relative flex items-start gap-2 border-b border-zinc-200 px-3 py-1 dark:border-zinc-800">
      <label htmlFor={inputId} className="w-8 shrink-0 pt-1.5 text-sm text-zinc-600 dark:text-zinc-400">
        {label}
      </label>
      <div className="flex min-w-0 flex-1 flex-wrap items-center gap-1">
        {chips.map((chip, index) => (
          <span
            key={`${chip.address}-${index}`}
            className={`inline-flex max-w-full items-center gap-1 rounded-full py-0.5 pr-1 pl-2.5 text-sm ${
              chip.valid
                ? "bg-zinc-100 text-zinc-900 dark:bg-zinc-800 dark:text-zinc-100"
                : "bg-red-100 text-red-900 ring-1 ring-red-400 dark:bg-red-500/20 dark:text-red-100"
            }`}
            title={chip.valid ? chip.address : `${chip.address} is not a valid address`}
          >
            <span className="truncate">{chip.name || chip.address}</span>
            {!chip.valid ? <span className="sr-only"> (not a valid address)</span> : null}
            <button
              type="button"
              className="rounded-full px-1 text-zinc-600 hover:bg-zinc-200 dark:text-zinc-300 dark:hover:bg-zinc-700"
              aria-label={`Remove ${chip.address}`}
              onClick={() => onChange(chips.filter((_, i) => i !== index))}
            >
              ×
            </button>
          </span>
        ))}
        <input
          ref={input}
          id={inputId}
          type="text"
          role="combobox"
          aria-expanded={expanded}
          aria-controls={listId}
          aria-autocomplete="list"
          aria-activedescendant={expanded ? `${listId}-${active}` : undefined}
          autoComplete="off"
          autoFocus={autoFocus}
          value={text}
          onChange={(event) => setText(event.target.value)}
          onKeyDown={onKeyDown}
          onPaste={onPaste}
          onBlur={() => {
            window.setTimeout(() => setSuggestions([]), 150);
            if (text.trim() !== "") commit(text);
          }}
          className="min-w-[8rem] flex-1 border-0 bg-transparent py-1.5 text-sm text-zinc-900 outline-none dark:text-zinc-100"
        />
      </div>
      <ul
        id={listId}
        role="listbox"
        aria-label={`${label} suggestions`}
        className={`absolute top-full right-3 left-11 z-50 max-h-64 overflow-y-auto rounded-lg bg-white p-1 shadow-lg ring-1 ring-zinc-200 dark:bg-zinc-900 dark:ring-zinc-700 ${
          expanded ? "" : "hidden"
        }`}
      >
        {suggestions.map((address, index) => (
          <li
            key={address.address}
            id={`${listId}-${index}`}
            role="option"
            aria-selected={index === active}
            onMouseDown={(event) => {
              event.preventDefault();
              pick(address);
            }}
            className={`cursor-pointer rounded-md px-3 py-1.5 text-sm ${
              index === active ? "bg-indigo-50 dark:bg-indigo-500/15" : ""
            }`}
          >
            <span className="font-medium text-zinc-900 dark:text-zinc-100">{address.name || address.address}</span>
            {address.name ? <span className="ml-2 text-zinc-600 dark:text-zinc-400">{address.address}</span> : null}
          </li>
        ))}
      </ul>
    </div>
  );
}
