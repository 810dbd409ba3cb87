import type { ReactNode } from "react";
import { Link } from "react-router";
import { Logo } from "../components/Logo";
import { ThemeToggle } from "../components/ThemeToggle";

/** The centred card of the sign-in, sign-up, setup, password and invitation pages. */
export function AuthLayout({
  title,
  subtitle,
  children,
  footer,
}: {
  title: string;
  subtitle?: ReactNode;
  children: ReactNode;
  footer?: ReactNode;
}) {
  return (
    <div className="flex min-h-dvh flex-col">
      <header className="flex items-center justify-between px-4 py-4 sm:px-6">
        <Link to="/" className="rounded-md" aria-label="Mailmark home">
          <Logo />
        </Link>
        <ThemeToggle />
      </header>
      <main className="flex flex-1 items-start justify-center px-4 pt-6 pb-16 sm:items-center sm:pt-0">
        <div className="w-full max-w-sm">
          <div className="mb-6 text-center">
            <h1 className="text-2xl font-semibold tracking-tight text-zinc-900 dark:text-white">{title}</h1>
            {subtitle ? <p className="mt-2 text-sm text-zinc-600 dark:text-zinc-400">{subtitle}</p> : null}
          </div>
          <div className="rounded-2xl bg-white p-6 shadow-sm ring-1 ring-zinc-200 sm:p-8 dark:bg-zinc-900 dark:ring-zinc-800">
            {children}
          </div>
          {footer ? <div className="mt-6 text-center text-sm text-zinc-600 dark:text-zinc-400">{footer}</div> : null}
        </div>
      </main>
    </div>
  );
}

export const textLink =
  "font-medium text-indigo-700 hover:text-indigo-600 hover:underline dark:text-indigo-300 dark:hover:text-indigo-200 rounded-sm";
