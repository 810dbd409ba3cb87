import { forwardRef, useState, type ComponentProps } from "react";
import { passwordStrength } from "../lib/password";
import { Input } from "./Field";

type PasswordInputProps = Omit<ComponentProps<typeof Input>, "type" | "suffix"> & {
  /** Show the strength meter and hint (for a new password). */
  showStrength?: boolean;
};

const meterColors = ["bg-red-500", "bg-red-500", "bg-amber-500", "bg-emerald-500", "bg-emerald-600"];

/** A password field with a show/hide toggle and, for new passwords, a strength hint. */
export const PasswordInput = forwardRef<HTMLInputElement, PasswordInputProps>(function PasswordInput(
  { showStrength = false, hint, value, ...rest },
  ref,
) {
  const [visible, setVisible] = useState(false);
  const strength = showStrength ? passwordStrength(String(value ?? "")) : null;
  return (
    <div>
      <Input
        ref={ref}
        type={visible ? "text" : "password"}
        value={value}
        hint={strength ? strength.hint : hint}
        autoCapitalize="off"
        spellCheck={false}
        suffix={
          <button
            type="button"
            onClick={() => setVisible((shown) => !shown)}
            className="rounded-lg px-3 text-sm font-medium text-zinc-700 ring-1 ring-zinc-300 ring-inset hover:bg-zinc-50 dark:text-zinc-200 dark:ring-zinc-700 dark:hover:bg-zinc-800"
            aria-pressed={visible}
            aria-label={visible ? "Hide password" : "Show password"}
          >
            {visible ? "Hide" : "Show"}
          </button>
        }
        {...rest}
      />
      {strength && strength.label ? (
        <div className="mt-2 flex items-center gap-2" aria-hidden="true">
          <div className="flex flex-1 gap-1">
            {[1, 2, 3, 4].map((step) => (
              <span
                key={step}
                className={`h-1 flex-1 rounded-full ${
                  strength.score >= step ? meterColors[strength.score] : "bg-zinc-200 dark:bg-zinc-700"
                }`}
              />
            ))}
          </div>
          <span className="w-16 text-right text-xs text-zinc-600 dark:text-zinc-400">{strength.label}</span>
        </div>
      ) : null}
    </div>
  );
});
