import { useState } from "react";
import { saveTheme, storedTheme, type ThemeChoice } from "../lib/theme";

const choices: { value: ThemeChoice; label: string; path: string }[] = [
  { value: "light", label: "Light", path: "M12 3v2m0 14v2m9-9h-2M5 12H3m15.4-6.4-1.4 1.4M7 17l-1.4 1.4m12.8 0L17 17M7 7 5.6 5.6M16 12a4 4 0 1 1-8 0 4 4 0 0 1 8 0Z" },
  { value: "dark", label: "Dark", path: "M21 12.8A9 9 0 1 1 11.2 3a7 7 0 0 0 9.8 9.8Z" },
  { value: "system", label: "System", path: "M4 5h16v11H4zM8 20h8m-4-4v4" },
];

/** Light / dark / system, remembered on this device. */
export function ThemeToggle({ className = "" }: { className?: string }) {
  const [choice, setChoice] = useState<ThemeChoice>(storedTheme);
  return (
    <div role="radiogroup" aria-label="Color theme" className={`inline-flex rounded-lg bg-zinc-100 p-0.5 dark:bg-zinc-800 ${className}`}>
      {choices.map((item) => (
        <button
          key={item.value}
          type="button"
          role="radio"
          aria-checked={choice === item.value}
          aria-label={`${item.label} theme`}
          title={`${item.label} theme`}
          onClick={() => {
            saveTheme(item.value);
            setChoice(item.value);
          }}
          className={`rounded-md p-1.5 ${
            choice === item.value
              ? "bg-white text-zinc-900 shadow-sm dark:bg-zinc-600 dark:text-white"
              : "text-zinc-600 hover:text-zinc-900 dark:text-zinc-400 dark:hover:text-white"
          }`}
        >
          <svg viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2" className="size-4" aria-hidden="true">
            <path d={item.path} strokeLinecap="round" strokeLinejoin="round" />
          </svg>
        </button>
      ))}
    </div>
  );
}
