import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { authApi, type Me, type SessionInfo } from "../api/auth";
import { ApiError, onUnauthenticated, setCsrfToken } from "../api/client";

type AuthState = {
  /** The last GET /api/session answer; null until it arrived. */
  session: SessionInfo | null;
  user: Me | null;
  /** Set when /api/session could not be read at all (server down). */
  error: ApiError | null;
  /** Owner or admin: may manage domains, team and the account. */
  canManage: boolean;
  refresh: () => Promise<void>;
  /** After sign-in, setup, accept or TOTP: the answer is the signed-in user. */
  signedIn: (user: Me) => void;
  signOut: () => Promise<void>;
  /** After a change to the user (name, TOTP). */
  updateUser: (user: Partial<Me>) => void;
};

const AuthContext = createContext<AuthState | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const [session, setSession] = useState<SessionInfo | null>(null);
  const [error, setError] = useState<ApiError | null>(null);

  const refresh = useCallback(async () => {
    try {
      const next = await authApi.session();
      setCsrfToken(next.csrfToken);
      setSession(next);
      setError(null);
    } catch (caught) {
      setError(caught instanceof ApiError ? caught : new ApiError(0, "network", String(caught)));
    }
  }, []);

  useEffect(() => {
    void refresh();
  }, [refresh]);

  // A 401 anywhere means the session is gone: forget the user; the guard sends them to sign-in.
  useEffect(
    () =>
      onUnauthenticated(() => {
        setSession((current) => (current ? { ...current, signedIn: false, user: null } : current));
      }),
    [],
  );

  const signedIn = useCallback((user: Me) => {
    setCsrfToken(user.csrfToken);
    setSession((current) => ({
      signedIn: true,
      setupRequired: false,
      signupOpen: current?.signupOpen ?? false,
      oidcProviders: current?.oidcProviders ?? [],
      csrfToken: user.csrfToken,
      user,
    }));
  }, []);

  const signOut = useCallback(async () => {
    try {
      await authApi.signOut();
    } finally {
      setSession((current) => (current ? { ...current, signedIn: false, user: null } : current));
      await refresh();
    }
  }, [refresh]);

  const updateUser = useCallback((changes: Partial<Me>) => {
    setSession((current) =>
      current?.user ? { ...current, user: { ...current.user, ...changes } } : current,
    );
  }, []);

  const value = useMemo<AuthState>(() => {
    const user = session?.signedIn ? (session.user ?? null) : null;
    return {
      session,
      user,
      error,
      canManage: user?.role === "owner" || user?.role === "admin",
      refresh,
      signedIn,
      signOut,
      updateUser,
    };
  }, [session, error, refresh, signedIn, signOut, updateUser]);

  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthState {
  const value = useContext(AuthContext);
  if (!value) throw new Error("useAuth outside <AuthProvider>");
  return value;
}

/** The signed-in user, inside the dashboard (the guard makes sure there is one). */
export function useUser(): Me {
  const { user } = useAuth();
  if (!user) throw new Error("useUser outside a signed-in route");
  return user;
}
