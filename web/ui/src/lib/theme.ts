/** Light, dark or the system's choice (prefers-color-scheme), remembered in localStorage. */

export type ThemeChoice = "system" | "light" | "dark";

const STORAGE_KEY = "mailmark.theme";
const media = () => window.matchMedia?.("(prefers-color-scheme: dark)");

export function storedTheme(): ThemeChoice {
  try {
    const value = window.localStorage.getItem(STORAGE_KEY);
    if (value === "light" || value === "dark") return value;
  } catch {
    // Storage may be disabled: follow the system.
  }
  return "system";
}

export function applyTheme(choice: ThemeChoice): void {
  const dark = choice === "dark" || (choice === "system" && media()?.matches === true);
  const root = document.documentElement;
  root.classList.toggle("dark", dark);
  root.classList.toggle("light", !dark);
}

export function saveTheme(choice: ThemeChoice): void {
  try {
    if (choice === "system") window.localStorage.removeItem(STORAGE_KEY);
    else window.localStorage.setItem(STORAGE_KEY, choice);
  } catch {
    // Not remembered; still applied for this page.
  }
  applyTheme(choice);
}

/** Apply the saved choice now and follow the system's changes while the choice is "system". */
export function initTheme(): void {
  applyTheme(storedTheme());
  media()?.addEventListener?.("change", () => {
    if (storedTheme() === "system") applyTheme("system");
  });
}
