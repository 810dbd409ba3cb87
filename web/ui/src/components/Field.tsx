import {
  forwardRef,
  useId,
  type InputHTMLAttributes,
  type ReactNode,
  type SelectHTMLAttributes,
  type TextareaHTMLAttributes,
} from "react";

const control =
  "block w-full rounded-lg border-0 bg-white px-3 py-2 text-sm text-zinc-900 shadow-sm ring-1 ring-inset " +
  "ring-zinc-300 placeholder:text-zinc-500 focus:ring-2 focus:ring-inset focus:ring-indigo-600 focus:outline-none " +
  "disabled:cursor-not-allowed disabled:bg-zinc-100 disabled:text-zinc-500 " +
  "dark:bg-zinc-900 dark:text-zinc-100 dark:ring-zinc-700 dark:placeholder:text-zinc-400 dark:focus:ring-indigo-400 " +
  "dark:disabled:bg-zinc-800";
const invalid = "ring-red-500 focus:ring-red-600 dark:ring-red-500";

type FieldChrome = {
  label: ReactNode;
  /** Announce the error when it appears (off for one that follows typing, like a mismatch). */
  announceError?: boolean;
  /** Help under the control (format, what happens). */
  hint?: ReactNode;
  /** The error for this field, shown under it and announced. */
  error?: string | null;
  /** Something at the end of the label row (a "Forgot password?" link). */
  labelAside?: ReactNode;
  className?: string;
};

function FieldFrame({
  id,
  label,
  hint,
  error,
  labelAside,
  announceError = true,
  className = "",
  children,
}: FieldChrome & { id: string; children: ReactNode }) {
  return (
    <div className={className}>
      <div className="mb-1.5 flex items-baseline justify-between gap-2">
        <label htmlFor={id} className="block text-sm font-medium text-zinc-900 dark:text-zinc-100">
          {label}
        </label>
        {labelAside}
      </div>
      {children}
      {error ? (
        <p id={`${id}-error`} role={announceError ? "alert" : undefined} className="mt-1.5 text-sm text-red-700 dark:text-red-400">
          {error}
        </p>
      ) : hint ? (
        <p id={`${id}-hint`} className="mt-1.5 text-sm text-zinc-600 dark:text-zinc-400">
          {hint}
        </p>
      ) : null}
    </div>
  );
}

function describedBy(id: string, error?: string | null, hint?: ReactNode) {
  if (error) return `${id}-error`;
  if (hint) return `${id}-hint`;
  return undefined;
}

type InputProps = Omit<InputHTMLAttributes<HTMLInputElement>, "className"> &
  FieldChrome & { inputClassName?: string; suffix?: ReactNode };

/** A labelled text input with its hint or error under it. */
export const Input = forwardRef<HTMLInputElement, InputProps>(function Input(
  { label, hint, error, labelAside, announceError, className, inputClassName = "", suffix, id: givenId, ...rest },
  ref,
) {
  const autoId = useId();
  const id = givenId ?? autoId;
  const input = (
    <input
      ref={ref}
      id={id}
      className={`${control} ${error ? invalid : ""} ${inputClassName}`}
      aria-invalid={error ? true : undefined}
      aria-describedby={describedBy(id, error, hint)}
      {...rest}
    />
  );
  return (
    <FieldFrame
      id={id}
      label={label}
      hint={hint}
      error={error}
      labelAside={labelAside}
      announceError={announceError}
      className={className}
    >
      {suffix ? (
        <div className="flex items-stretch gap-2">
          <div className="min-w-0 flex-1">{input}</div>
          {suffix}
        </div>
      ) : (
        input
      )}
    </FieldFrame>
  );
});

type SelectProps = Omit<SelectHTMLAttributes<HTMLSelectElement>, "className"> & FieldChrome;

export const Select = forwardRef<HTMLSelectElement, SelectProps>(function Select(
  { label, hint, error, labelAside, className, id: givenId, children, ...rest },
  ref,
) {
  const autoId = useId();
  const id = givenId ?? autoId;
  return (
    <FieldFrame id={id} label={label} hint={hint} error={error} labelAside={labelAside} className={className}>
      <select
        ref={ref}
        id={id}
        className={`${control} pr-8 ${error ? invalid : ""}`}
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy(id, error, hint)}
        {...rest}
      >
        {children}
      </select>
    </FieldFrame>
  );
});

type TextareaProps = Omit<TextareaHTMLAttributes<HTMLTextAreaElement>, "className"> & FieldChrome;

export const Textarea = forwardRef<HTMLTextAreaElement, TextareaProps>(function Textarea(
  { label, hint, error, labelAside, className, id: givenId, ...rest },
  ref,
) {
  const autoId = useId();
  const id = givenId ?? autoId;
  return (
    <FieldFrame id={id} label={label} hint={hint} error={error} labelAside={labelAside} className={className}>
      <textarea
        ref={ref}
        id={id}
        className={`${control} ${error ? invalid : ""}`}
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy(id, error, hint)}
        {...rest}
      />
    </FieldFrame>
  );
});

/** A bare select for tables (a role picker in a row): labelled by aria-label. */
export const InlineSelect = forwardRef<HTMLSelectElement, SelectHTMLAttributes<HTMLSelectElement>>(
  function InlineSelect({ className = "", ...rest }, ref) {
    return <select ref={ref} className={`${control} w-auto py-1.5 pr-8 ${className}`} {...rest} />;
  },
);

/** A checkbox with its label to the right. */
export function Checkbox({
  label,
  hint,
  className = "",
  ...rest
}: Omit<InputHTMLAttributes<HTMLInputElement>, "type"> & { label: ReactNode; hint?: ReactNode }) {
  const id = useId();
  return (
    <div className={`flex items-start gap-3 ${className}`}>
      <input
        id={id}
        type="checkbox"
        className="mt-0.5 size-4 rounded border-zinc-300 text-indigo-600 accent-indigo-600 focus-visible:outline-2 dark:border-zinc-600"
        aria-describedby={hint ? `${id}-hint` : undefined}
        {...rest}
      />
      <div className="text-sm">
        <label htmlFor={id} className="font-medium text-zinc-900 dark:text-zinc-100">
          {label}
        </label>
        {hint ? (
          <p id={`${id}-hint`} className="text-zinc-600 dark:text-zinc-400">
            {hint}
          </p>
        ) : null}
      </div>
    </div>
  );
}
