import { lazy, Suspense, type ReactNode } from "react";
import { createBrowserRouter, Outlet, RouterProvider } from "react-router";
import { AuthProvider } from "./auth/AuthContext";
import { HomeRedirect, RedirectIfSignedIn, RequireAuth } from "./auth/guards";
import { FullPageSpinner } from "./components/FullPage";
import { Spinner } from "./components/Spinner";
import { ToastProvider } from "./components/Toast";
import { DashboardLayout } from "./layouts/DashboardLayout";
import ForgotPasswordPage from "./pages/ForgotPasswordPage";
import InvitePage from "./pages/InvitePage";
import NotFoundPage from "./pages/NotFoundPage";
import OverviewPage from "./pages/OverviewPage";
import ResetPasswordPage from "./pages/ResetPasswordPage";
import SetupPage from "./pages/SetupPage";
import SignInPage from "./pages/SignInPage";
import SignUpPage from "./pages/SignUpPage";

// Pages past the overview load on first visit: the dashboard's entry stays small.
const DomainsPage = lazy(() => import("./pages/dashboard/domains/DomainsPage"));
const DomainPage = lazy(() => import("./pages/dashboard/domains/DomainPage"));
const MailboxesPage = lazy(() => import("./pages/dashboard/mailboxes/MailboxesPage"));
const MailboxPage = lazy(() => import("./pages/dashboard/mailboxes/MailboxPage"));
const DeveloperPage = lazy(() => import("./pages/dashboard/developer/DeveloperPage"));
const TeamPage = lazy(() => import("./pages/TeamPage"));
const SettingsPage = lazy(() => import("./pages/dashboard/settings/SettingsPage"));
const SecurityPage = lazy(() => import("./pages/SecurityPage"));
const BillingPage = lazy(() => import("./pages/dashboard/billing/BillingPage"));
const AffiliatePage = lazy(() => import("./pages/dashboard/affiliates/AffiliatePage"));
const OperatorPage = lazy(() => import("./pages/dashboard/operator/OperatorPage"));
const ContactsArea = lazy(() => import("./pages/dashboard/contacts/ContactsArea"));
const CampaignsArea = lazy(() => import("./pages/dashboard/campaigns/CampaignsArea"));
const MailApp = lazy(() => import("./pages/mail/MailApp"));

function Lazy({ children }: { children: ReactNode }) {
  return (
    <Suspense
      fallback={
        <div className="flex justify-center py-16 text-zinc-500">
          <Spinner className="size-6" label="Loading page" />
        </div>
      }
    >
      {children}
    </Suspense>
  );
}

function Root() {
  return (
    <AuthProvider>
      <ToastProvider>
        <Suspense fallback={<FullPageSpinner />}>
          <Outlet />
        </Suspense>
      </ToastProvider>
    </AuthProvider>
  );
}

/** The SPA paths; the server answers index.html for each (web/spa.py keeps the same list). */
export const router = createBrowserRouter([
  {
    element: <Root />,
    children: [
      { path: "/", element: <HomeRedirect /> },
      { path: "/setup", element: <SetupPage /> },
      { path: "/invite/:token", element: <InvitePage /> },
      { path: "/sign-in", element: <RedirectIfSignedIn><SignInPage /></RedirectIfSignedIn> },
      { path: "/sign-up", element: <RedirectIfSignedIn><SignUpPage /></RedirectIfSignedIn> },
      { path: "/forgot-password", element: <RedirectIfSignedIn><ForgotPasswordPage /></RedirectIfSignedIn> },
      { path: "/reset-password", element: <ResetPasswordPage /> },
      {
        path: "/mail/*",
        element: (
          <RequireAuth>
            <MailApp />
          </RequireAuth>
        ),
      },
      {
        path: "/dashboard",
        element: (
          <RequireAuth>
            <DashboardLayout />
          </RequireAuth>
        ),
        children: [
          { index: true, element: <OverviewPage /> },
          { path: "domains", element: <Lazy><DomainsPage /></Lazy> },
          { path: "domains/:name", element: <Lazy><DomainPage /></Lazy> },
          { path: "mailboxes", element: <Lazy><MailboxesPage /></Lazy> },
          { path: "mailboxes/:address", element: <Lazy><MailboxPage /></Lazy> },
          { path: "contacts/*", element: <Lazy><ContactsArea /></Lazy> },
          { path: "campaigns/*", element: <Lazy><CampaignsArea /></Lazy> },
          { path: "developer", element: <Lazy><DeveloperPage /></Lazy> },
          { path: "team", element: <Lazy><TeamPage /></Lazy> },
          { path: "billing", element: <Lazy><BillingPage /></Lazy> },
          { path: "affiliates", element: <Lazy><AffiliatePage /></Lazy> },
          { path: "operator", element: <Lazy><OperatorPage /></Lazy> },
          { path: "settings", element: <Lazy><SettingsPage /></Lazy> },
          { path: "settings/security", element: <Lazy><SecurityPage /></Lazy> },
          { path: "*", element: <NotFoundPage /> },
        ],
      },
      { path: "*", element: <NotFoundPage /> },
    ],
  },
]);

export function App() {
  return <RouterProvider router={router} />;
}
