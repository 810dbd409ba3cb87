import { createContext, useContext, type ReactNode } from "react";
import { accountApi, type Account } from "../api/account";
import { useAsync, type AsyncState } from "../lib/useAsync";

const AccountContext = createContext<AsyncState<Account> | null>(null);

/** GET /api/account once for the dashboard: the banner, the overview and settings read it. */
export function AccountProvider({ children }: { children: ReactNode }) {
  const state = useAsync(() => accountApi.get(), []);
  return <AccountContext.Provider value={state}>{children}</AccountContext.Provider>;
}

/** The account (plan, usage, notices); `reload()` after a change that moves the usage. */
export function useAccount(): AsyncState<Account> {
  const value = useContext(AccountContext);
  if (!value) throw new Error("useAccount outside <AccountProvider>");
  return value;
}
