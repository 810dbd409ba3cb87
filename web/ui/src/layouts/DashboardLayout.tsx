import { useEffect, useId, useRef, useState } from "react";
import { Link, NavLink, Outlet, useLocation, useNavigate } from "react-router";
import { AccountProvider, useAccount } from "../account/AccountContext";
import { useAuth, useUser } from "../auth/AuthContext";
import { Alert } from "../components/Alert";
import { Logo } from "../components/Logo";
import { ThemeToggle } from "../components/ThemeToggle";
import { operatorApi } from "../api/affiliates";
import { useAsync } from "../lib/useAsync";
import { navFor } from "./nav";

/** The signed-in shell: sidebar (a menu below `lg`), account banner, and the page. */
export function DashboardLayout() {
  return (
    <AccountProvider>
      <Shell />
    </AccountProvider>
  );
}

function Shell() {
  const user = useUser();
  const location = useLocation();
  const [menuOpen, setMenuOpen] = useState(false);
  const menuId = useId();

  useEffect(() => setMenuOpen(false), [location.pathname]);

  return (
    <div className="min-h-dvh lg:flex">
      <a
        href="#main"
        className="sr-only z-50 rounded-md bg-white px-3 py-2 text-sm font-medium text-zinc-900 focus:not-sr-only focus:fixed focus:top-2 focus:left-2 dark:bg-zinc-900 dark:text-white"
      >
        Skip to content
      </a>

      {/* Wide screens: a fixed sidebar. */}
      <aside className="hidden w-64 shrink-0 flex-col border-r border-zinc-200 bg-white lg:fixed lg:inset-y-0 lg:flex dark:border-zinc-800 dark:bg-zinc-900">
        <div className="flex h-16 items-center px-5">
          <Link to="/dashboard" className="rounded-md" aria-label="Mailmark dashboard">
            <Logo />
          </Link>
        </div>
        <p className="truncate px-5 pb-3 text-xs font-medium tracking-wide text-zinc-500 uppercase dark:text-zinc-400" title={user.accountName}>
          {user.accountName}
        </p>
        <SideNav />
        <div className="flex items-center gap-1 border-t border-zinc-200 p-3 dark:border-zinc-800">
          <div className="min-w-0 flex-1">
            <UserMenu placement="up" />
          </div>
          <SignOutButton />
        </div>
      </aside>

      {/* Narrow screens: a top bar with a menu button. */}
      <header className="sticky top-0 z-30 border-b border-zinc-200 bg-white/95 backdrop-blur lg:hidden dark:border-zinc-800 dark:bg-zinc-900/95">
        <div className="flex h-14 items-center justify-between gap-2 px-4">
          <Link to="/dashboard" className="rounded-md" aria-label="Mailmark dashboard">
            <Logo />
          </Link>
          <button
            type="button"
            className="inline-flex items-center gap-2 rounded-lg px-3 py-2 text-sm font-medium text-zinc-700 hover:bg-zinc-100 dark:text-zinc-200 dark:hover:bg-zinc-800"
            aria-expanded={menuOpen}
            aria-controls={menuId}
            onClick={() => setMenuOpen((open) => !open)}
          >
            <svg viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2" className="size-5" aria-hidden="true">
              <path d={menuOpen ? "M6 6l12 12M18 6 6 18" : "M4 7h16M4 12h16M4 17h16"} strokeLinecap="round" />
            </svg>
            Menu
          </button>
        </div>
        {menuOpen ? (
          <div id={menuId} className="border-t border-zinc-200 pb-3 dark:border-zinc-800">
            <p className="truncate px-5 pt-3 pb-2 text-xs font-medium tracking-wide text-zinc-500 uppercase dark:text-zinc-400">
              {user.accountName}
            </p>
            <SideNav />
            <div className="flex items-center gap-1 px-3 pt-2">
              <div className="min-w-0 flex-1">
                <UserMenu placement="down" />
              </div>
              <SignOutButton />
            </div>
          </div>
        ) : null}
      </header>

      <div className="min-w-0 flex-1 lg:pl-64">
        <AccountBanner />
        <main id="main" tabIndex={-1} className="mx-auto w-full max-w-6xl px-4 py-6 focus:outline-none sm:px-6 sm:py-8 lg:px-8">
          <Outlet />
        </main>
      </div>
    </div>
  );
}

function SideNav() {
  const user = useUser();
  const operator = useAsync(() => (user.role === "owner" ? operatorApi.get() : Promise.resolve(null)), [user.role]);
  return (
    <nav aria-label="Dashboard" className="flex-1 px-3">
      <ul className="space-y-0.5">
        {navFor(user.role, operator.data?.operator ?? false).map((item) => (
          <li key={item.to}>
            <NavLink
              to={item.to}
              end={item.end}
              className={({ isActive }) =>
                `group flex items-center gap-3 rounded-lg px-3 py-2 text-sm font-medium transition-colors ${
                  isActive
                    ? "bg-indigo-50 text-indigo-700 dark:bg-indigo-500/15 dark:text-indigo-200"
                    : "text-zinc-700 hover:bg-zinc-100 hover:text-zinc-900 dark:text-zinc-300 dark:hover:bg-zinc-800 dark:hover:text-white"
                }`
              }
            >
              <svg viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="1.8" className="size-5 shrink-0 opacity-80" aria-hidden="true">
                <path d={item.icon} strokeLinecap="round" strokeLinejoin="round" />
              </svg>
              {item.label}
            </NavLink>
          </li>
        ))}
      </ul>
    </nav>
  );
}

function initials(name: string, email: string): string {
  const words = name.trim().split(/\s+/).filter(Boolean);
  if (words.length === 0) return email.slice(0, 1).toUpperCase();
  return (words[0]!.charAt(0) + (words.length > 1 ? words[words.length - 1]!.charAt(0) : "")).toUpperCase();
}

/** Sign out, then go to the sign-in page (even when the server could not be told). */
function useSignOut() {
  const { signOut } = useAuth();
  const navigate = useNavigate();
  const [signingOut, setSigningOut] = useState(false);
  async function run() {
    setSigningOut(true);
    try {
      await signOut();
    } finally {
      setSigningOut(false);
      navigate("/sign-in", { replace: true });
    }
  }
  return { signingOut, signOut: run };
}

function SignOutButton() {
  const { signingOut, signOut } = useSignOut();
  return (
    <button
      type="button"
      onClick={() => void signOut()}
      disabled={signingOut}
      aria-label="Sign out"
      title="Sign out"
      className="shrink-0 rounded-lg p-2 text-zinc-600 hover:bg-zinc-100 hover:text-zinc-900 disabled:opacity-60 dark:text-zinc-400 dark:hover:bg-zinc-800 dark:hover:text-white"
    >
      <svg viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="1.8" className="size-5" aria-hidden="true">
        <path d="M15 4h3a2 2 0 0 1 2 2v12a2 2 0 0 1-2 2h-3M10 17l5-5-5-5M15 12H4" strokeLinecap="round" strokeLinejoin="round" />
      </svg>
    </button>
  );
}

/** The user's name and email; opens links to their settings and the theme choice. */
function UserMenu({ placement }: { placement: "up" | "down" }) {
  const user = useUser();
  const [open, setOpen] = useState(false);
  const root = useRef<HTMLDivElement>(null);
  const panelId = useId();

  useEffect(() => {
    if (!open) return;
    function onPointer(event: PointerEvent) {
      if (!root.current?.contains(event.target as Node)) setOpen(false);
    }
    function onKey(event: KeyboardEvent) {
      if (event.key === "Escape") setOpen(false);
    }
    document.addEventListener("pointerdown", onPointer);
    document.addEventListener("keydown", onKey);
    return () => {
      document.removeEventListener("pointerdown", onPointer);
      document.removeEventListener("keydown", onKey);
    };
  }, [open]);

  const item =
    "flex w-full items-center rounded-md px-3 py-2 text-left text-sm text-zinc-700 hover:bg-zinc-100 hover:text-zinc-900 dark:text-zinc-200 dark:hover:bg-zinc-800 dark:hover:text-white";

  return (
    <div ref={root} className="relative">
      <button
        type="button"
        aria-expanded={open}
        aria-controls={panelId}
        onClick={() => setOpen((value) => !value)}
        className="flex w-full items-center gap-3 rounded-lg p-2 text-left hover:bg-zinc-100 dark:hover:bg-zinc-800"
      >
        <span className="flex size-8 shrink-0 items-center justify-center rounded-full bg-indigo-600 text-xs font-semibold text-white" aria-hidden="true">
          {initials(user.name, user.email)}
        </span>
        <span className="min-w-0 flex-1">
          <span className="sr-only">Account menu: </span>
          <span className="block truncate text-sm font-medium text-zinc-900 dark:text-white">{user.name || user.email}</span>
          {user.name ? (
            <span className="block truncate text-xs text-zinc-600 dark:text-zinc-400">{user.email}</span>
          ) : null}
        </span>
        <svg viewBox="0 0 20 20" fill="currentColor" className="size-4 text-zinc-500" aria-hidden="true">
          <path d="M5.2 7.2a.75.75 0 0 1 1.06 0L10 10.94l3.74-3.74a.75.75 0 1 1 1.06 1.06l-4.27 4.27a.75.75 0 0 1-1.06 0L5.2 8.26a.75.75 0 0 1 0-1.06Z" />
        </svg>
      </button>
      {open ? (
        <div
          id={panelId}
          className={`absolute inset-x-0 z-40 rounded-xl bg-white p-1.5 shadow-lg ring-1 ring-zinc-200 dark:bg-zinc-900 dark:ring-zinc-700 ${
            placement === "up" ? "bottom-full mb-2" : "top-full mt-2"
          }`}
        >
          <p className="px-3 pt-1.5 pb-2 text-xs text-zinc-600 dark:text-zinc-400">
            Signed in as <span className="font-medium capitalize text-zinc-800 dark:text-zinc-200">{user.role}</span>
          </p>
          <Link to="/dashboard/settings/security" className={item} onClick={() => setOpen(false)}>
            Security
          </Link>
          <Link to="/dashboard/settings" className={item} onClick={() => setOpen(false)}>
            Settings
          </Link>
          <div className="flex items-center justify-between px-3 py-2 text-sm text-zinc-700 dark:text-zinc-200">
            <span>Theme</span>
            <ThemeToggle />
          </div>

        </div>
      ) : null}
    </div>
  );
}

/** Paused, trial and quota notices of the account, above every dashboard page. */
function AccountBanner() {
  const { data: account } = useAccount();
  if (!account) return null;
  const notices = account.notices ?? [];
  if (account.status === "paused") {
    return (
      <div className="border-b border-amber-300 bg-amber-50 dark:border-amber-500/30 dark:bg-amber-950/40">
        <div className="mx-auto max-w-6xl px-4 py-3 sm:px-6 lg:px-8">
          <Alert tone="warning" title="This account is paused" className="bg-transparent p-0 ring-0 dark:bg-transparent">
            {notices.length > 0 ? notices.join(" ") : "Sending and receiving are paused until a plan is selected."}
          </Alert>
        </div>
      </div>
    );
  }
  if (account.status === "trial" && account.trialDaysLeft !== null) {
    return (
      <div className="border-b border-indigo-200 bg-indigo-50 dark:border-indigo-500/30 dark:bg-indigo-950/40">
        <p className="mx-auto max-w-6xl px-4 py-2.5 text-sm text-indigo-900 sm:px-6 lg:px-8 dark:text-indigo-100">
          <span className="font-semibold">Free trial:</span>{" "}
          {account.trialDaysLeft === 1 ? "1 day left." : `${account.trialDaysLeft} days left.`} Every feature is
          included; after the trial the account pauses until a plan is selected.
        </p>
      </div>
    );
  }
  return null;
}
