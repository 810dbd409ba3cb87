/** Where a person is sent, from whether they are signed in and where they tried to go. */

/** The path to return to after sign-in: only a local path, never another site (`//x`, `http:`). */
export function safeNext(next: string | null | undefined, fallback = "/dashboard"): string {
  if (!next || !next.startsWith("/") || next.startsWith("//") || next.startsWith("/\\")) {
    return fallback;
  }
  return next;
}

/** The sign-in URL that comes back to `path` (+ query) afterwards. */
export function signInUrl(path: string): string {
  if (path === "/" || path === "/dashboard" || path === "") return "/sign-in";
  return `/sign-in?next=${encodeURIComponent(path)}`;
}

/** `/` → the dashboard when signed in, the sign-in page otherwise. */
export function homeRedirect(signedIn: boolean): string {
  return signedIn ? "/dashboard" : "/sign-in";
}
