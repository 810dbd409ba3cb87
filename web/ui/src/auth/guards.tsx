import type { ReactNode } from "react";
import { Navigate, useLocation, useSearchParams } from "react-router";
import { FullPageError, FullPageSpinner } from "../components/FullPage";
import { useAuth } from "./AuthContext";
import { homeRedirect, safeNext, signInUrl } from "./redirects";

/** Private pages: wait for the session, then send a signed-out visitor to sign-in (and back). */
export function RequireAuth({ children }: { children: ReactNode }) {
  const { session, user, error, refresh } = useAuth();
  const location = useLocation();
  if (!session) {
    return error ? <FullPageError error={error} onRetry={refresh} /> : <FullPageSpinner />;
  }
  if (!user) return <Navigate to={signInUrl(location.pathname + location.search)} replace />;
  return <>{children}</>;
}

/** Sign-in, sign-up and password pages: a signed-in visitor goes on to where they were heading. */
export function RedirectIfSignedIn({ children }: { children: ReactNode }) {
  const { session, user, error, refresh } = useAuth();
  const [params] = useSearchParams();
  if (!session) {
    return error ? <FullPageError error={error} onRetry={refresh} /> : <FullPageSpinner />;
  }
  if (user) return <Navigate to={safeNext(params.get("next"))} replace />;
  return <>{children}</>;
}

export function HomeRedirect() {
  const { session, user, error, refresh } = useAuth();
  if (!session) {
    return error ? <FullPageError error={error} onRetry={refresh} /> : <FullPageSpinner />;
  }
  return <Navigate to={homeRedirect(user !== null)} replace />;
}
