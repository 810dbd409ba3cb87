import { createContext, useCallback, useContext, useMemo, useRef, useState, type ReactNode } from "react";

type Toast = {
  id: number;
  message: string;
  tone: "info" | "error";
  action?: { label: string; run: () => void };
  /** Milliseconds on screen. */
  duration: number;
};

export type MailToastApi = {
  show: (message: string, options?: { tone?: Toast["tone"]; action?: Toast["action"]; duration?: number }) => number;
  dismiss: (id: number) => void;
};

const Context = createContext<MailToastApi | null>(null);

/** Toasts of the mail pages: with an action ("Undo") and a chosen duration; announced politely. */
export function MailToastProvider({ children }: { children: ReactNode }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const next = useRef(1);

  const dismiss = useCallback((id: number) => setToasts((current) => current.filter((toast) => toast.id !== id)), []);

  const show = useCallback<MailToastApi["show"]>(
    (message, options = {}) => {
      const id = next.current++;
      const toast: Toast = {
        id,
        message,
        tone: options.tone ?? "info",
        action: options.action,
        duration: options.duration ?? 5000,
      };
      setToasts((current) => [...current.slice(-2), toast]);
      window.setTimeout(() => dismiss(id), toast.duration);
      return id;
    },
    [dismiss],
  );

  const api = useMemo(() => ({ show, dismiss }), [show, dismiss]);

  return (
    <Context.Provider value={api}>
      {children}
      <div
        aria-live="polite"
        className="pointer-events-none fixed inset-x-0 bottom-0 z-[70] flex flex-col items-center gap-2 p-4 sm:items-start"
      >
        {toasts.map((toast) => (
          <div
            key={toast.id}
            role={toast.tone === "error" ? "alert" : "status"}
            className={`pointer-events-auto flex w-full max-w-md items-center gap-3 rounded-lg px-4 py-3 text-sm shadow-lg ${
              toast.tone === "error" ? "bg-red-700 text-white" : "bg-zinc-900 text-white dark:bg-zinc-100 dark:text-zinc-900"
            }`}
          >
            <span className="flex-1">{toast.message}</span>
            {toast.action ? (
              <button
                type="button"
                className="rounded px-2 py-1 font-semibold text-indigo-300 hover:bg-white/10 dark:text-indigo-700 dark:hover:bg-zinc-900/10"
                onClick={() => {
                  dismiss(toast.id);
                  toast.action!.run();
                }}
              >
                {toast.action.label}
              </button>
            ) : null}
            <button
              type="button"
              className="rounded px-1 opacity-80 hover:opacity-100"
              aria-label="Dismiss"
              onClick={() => dismiss(toast.id)}
            >
              ×
            </button>
          </div>
        ))}
      </div>
    </Context.Provider>
  );
}

export function useMailToast(): MailToastApi {
  const value = useContext(Context);
  if (!value) throw new Error("useMailToast outside <MailToastProvider>");
  return value;
}
