import { useEffect, useState } from "react";
import { Button, type ButtonSize, type ButtonVariant } from "./Button";

async function copyText(text: string): Promise<void> {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Plain http on a LAN address has no Clipboard API: a selected textarea and execCommand still work.
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "fixed -left-[9999px] top-0";
  document.body.appendChild(area);
  area.select();
  const ok = document.execCommand("copy");
  area.remove();
  if (!ok) throw new Error("copy refused");
}

/** Copies `value`; says "Copied" for a moment. `label` names what is copied for screen readers. */
export function CopyButton({
  value,
  text = "Copy",
  label = text,
  variant = "secondary",
  size = "sm",
  className = "",
}: {
  value: string;
  /** The visible word ("Copy link"); `label` is the accessible name ("Copy the invitation link"). */
  text?: string;
  label?: string;
  variant?: ButtonVariant;
  size?: ButtonSize;
  className?: string;
}) {
  const [state, setState] = useState<"idle" | "copied" | "failed">("idle");

  useEffect(() => {
    if (state === "idle") return;
    const timer = window.setTimeout(() => setState("idle"), 2000);
    return () => window.clearTimeout(timer);
  }, [state]);

  return (
    <Button
      variant={variant}
      size={size}
      className={className}
      aria-label={state === "idle" ? label : undefined}
      onClick={() => copyText(value).then(() => setState("copied"), () => setState("failed"))}
      icon={
        <svg viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2" className="size-4" aria-hidden="true">
          {state === "copied" ? (
            <path d="m5 12 5 5L20 7" strokeLinecap="round" strokeLinejoin="round" />
          ) : (
            <>
              <rect x="9" y="9" width="11" height="11" rx="2" />
              <path d="M5 15V5a2 2 0 0 1 2-2h10" strokeLinecap="round" />
            </>
          )}
        </svg>
      }
    >
      <span aria-live="polite">{state === "copied" ? "Copied" : state === "failed" ? "Copy failed" : text}</span>
    </Button>
  );
}
