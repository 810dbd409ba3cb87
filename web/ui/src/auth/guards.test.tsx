import { render, screen } from "@testing-library/react";
import { createMemoryRouter, RouterProvider, useLocation } from "react-router";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { setCsrfToken } from "../api/client";
import { fakeServer, signedOutSession } from "../test/fakeServer";
import { AuthProvider } from "./AuthContext";
import { HomeRedirect, RedirectIfSignedIn, RequireAuth } from "./guards";
import { safeNext, signInUrl } from "./redirects";

beforeEach(() => setCsrfToken(null));
afterEach(() => vi.unstubAllGlobals());

const owner = {
  id: 1,
  email: "ann@acme.test",
  name: "Ann",
  role: "owner",
  accountName: "Acme",
  accountId: 1,
  totpEnabled: false,
  csrfToken: "csrf-signed-in",
};

function Where() {
  const location = useLocation();
  return <p data-testid="where">{location.pathname + location.search}</p>;
}

function renderAt(path: string) {
  const router = createMemoryRouter(
    [
      { path: "/", element: <HomeRedirect /> },
      { path: "/sign-in", element: <RedirectIfSignedIn><Where /></RedirectIfSignedIn> },
      { path: "/dashboard/*", element: <RequireAuth><Where /></RequireAuth> },
    ],
    { initialEntries: [path] },
  );
  render(
    <AuthProvider>
      <RouterProvider router={router} />
    </AuthProvider>,
  );
}

describe("route guards", () => {
  it("sends a signed-out visitor of a dashboard page to sign-in, remembering the page", async () => {
    fakeServer({ "GET /api/session": { json: signedOutSession } });
    renderAt("/dashboard/team?tab=invitations");
    expect(await screen.findByTestId("where")).toHaveTextContent("/sign-in?next=%2Fdashboard%2Fteam%3Ftab%3Dinvitations");
  });

  it("lets a signed-in user into the dashboard", async () => {
    fakeServer({ "GET /api/session": { json: { ...signedOutSession, signedIn: true, user: owner } } });
    renderAt("/dashboard/team");
    expect(await screen.findByTestId("where")).toHaveTextContent(/^\/dashboard\/team$/);
  });

  it("sends a signed-in visitor of sign-in on to `next`", async () => {
    fakeServer({ "GET /api/session": { json: { ...signedOutSession, signedIn: true, user: owner } } });
    renderAt("/sign-in?next=%2Fdashboard%2Fsettings%2Fsecurity");
    expect(await screen.findByTestId("where")).toHaveTextContent(/^\/dashboard\/settings\/security$/);
  });

  it("never follows `next` to another site", async () => {
    fakeServer({ "GET /api/session": { json: { ...signedOutSession, signedIn: true, user: owner } } });
    renderAt("/sign-in?next=%2F%2Fevil.example%2Fdashboard");
    expect(await screen.findByTestId("where")).toHaveTextContent(/^\/dashboard$/);
  });

  it("answers / with sign-in or the dashboard", async () => {
    fakeServer({ "GET /api/session": { json: signedOutSession } });
    renderAt("/");
    expect(await screen.findByTestId("where")).toHaveTextContent(/^\/sign-in$/);
  });

  it("shows a retry page when the server cannot be reached", async () => {
    fakeServer({ "GET /api/session": { status: 0 } });
    renderAt("/dashboard");
    expect(await screen.findByRole("heading", { level: 1 })).toHaveTextContent("Mailmark is not answering");
    expect(screen.getByRole("button", { name: "Try again" })).toBeInTheDocument();
  });
});

describe("safeNext", () => {
  it.each([
    ["/dashboard/team", "/dashboard/team"],
    ["/dashboard?x=1", "/dashboard?x=1"],
    ["//evil.example", "/dashboard"],
    ["/\\evil.example", "/dashboard"],
    ["https://evil.example/", "/dashboard"],
    ["javascript:alert(1)", "/dashboard"],
    ["", "/dashboard"],
    [null, "/dashboard"],
  ])("%s → %s", (next, expected) => {
    expect(safeNext(next)).toBe(expected);
  });

  it("leaves `next` out for the dashboard itself", () => {
    expect(signInUrl("/dashboard")).toBe("/sign-in");
    expect(signInUrl("/dashboard/domains/acme.test")).toBe("/sign-in?next=%2Fdashboard%2Fdomains%2Facme.test");
  });
});
