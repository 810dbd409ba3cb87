import { act, fireEvent, render, screen } from "@testing-library/react";
import { MemoryRouter, Route, Routes } from "react-router";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { AccountProvider } from "../../../account/AccountContext";
import type { DnsRecord, DomainDetail } from "../../../api/domains";
import { ToastProvider } from "../../../components/Toast";
import { fakeServer } from "../../../test/fakeServer";
import DomainPage, { POLL_INTERVAL_MS } from "./DomainPage";

function record(overrides: Partial<DnsRecord>): DnsRecord {
  return {
    type: "MX",
    host: "acme.test",
    relativeHost: "@",
    value: "mx.mail.test",
    priority: 10,
    purpose: "Inbound mail: route the domain's mail to this server",
    required: true,
    status: "ok",
    found: ["10 mx.mail.test."],
    fix: null,
    checkedAt: "2026-12-05T22:00:00Z",
    ...overrides,
  };
}

const spf = record({
  type: "TXT",
  value: "v=spf1 a:mx.mail.test ~all",
  priority: null,
  purpose: "SPF: authorise this server to send as the domain",
  found: ["v=spf1 a:mx.mail.test ~all"],
});

function domain(mx: DnsRecord, verified: boolean): DomainDetail {
  return {
    name: "acme.test",
    status: verified ? "verified" : "pending",
    verified,
    createdAt: "2026-12-05T21:00:00Z",
    lastCheckedAt: "2026-12-05T22:00:00Z",
    contains: { mailboxes: 2, messages: 40, apiKeys: 1, webhooks: 0, queued: 0 },
    records: [mx, spf],
    aliasOf: null,
    aliasDomains: [],
  };
}

const missingMx = record({
  status: "missing",
  found: [],
  fix: "Add an MX record for acme.test pointing to mx.mail.test.",
});
const pending = domain(missingMx, false);
const verified = domain(record({}), true);

const account = {
  name: "Acme",
  status: "active",
  plan: { name: "pro", label: "Pro", domains: 5, mailboxes: null, emailsPerMonth: 25000 },
  trialEndsAt: null,
  trialDaysLeft: null,
  usage: { domains: 1, mailboxes: 2, emailsThisMonth: 10 },
  notices: [],
  signup: "closed",
};

/** What the next check of the domain answers; a test changes it as the DNS "propagates". */
let nextCheck: () => DomainDetail | Promise<DomainDetail>;
let server: ReturnType<typeof fakeServer>;

beforeEach(() => {
  vi.useFakeTimers();
  nextCheck = () => pending;
  server = fakeServer({
    "GET /api/session": { json: { signedIn: true, csrfToken: "t0ken" } },
    "GET /api/account": { json: account },
    "GET /api/domains/acme.test": { json: pending },
    "POST /api/domains/acme.test/verify": async () => ({ json: await nextCheck() }),
  });
});

afterEach(() => {
  vi.unstubAllGlobals();
  vi.useRealTimers();
});

async function flush(ms = 0) {
  await act(() => vi.advanceTimersByTimeAsync(ms));
}

function renderPage() {
  return render(
    <MemoryRouter initialEntries={["/dashboard/domains/acme.test"]}>
      <ToastProvider>
        <AccountProvider>
          <Routes>
            <Route path="/dashboard/domains/:name" element={<DomainPage />} />
          </Routes>
        </AccountProvider>
      </ToastProvider>
    </MemoryRouter>,
  );
}

const rowStatus = (container: HTMLElement, name: string) =>
  container.querySelector(`tbody[aria-label="${name}"]`)?.getAttribute("data-status");

const checks = () =>
  server.requests.filter((request) => request.method === "POST" && request.path === "/api/domains/acme.test/verify");

describe("DomainPage", () => {
  it("shows each record's check with the fix, and polls until the domain verifies", async () => {
    const { container } = renderPage();
    await flush();
    expect(screen.getByRole("heading", { level: 1, name: "acme.test" })).toBeInTheDocument();
    expect(rowStatus(container, "MX @")).toBe("missing");
    expect(rowStatus(container, "TXT @")).toBe("ok");
    expect(screen.getAllByText("Add an MX record for acme.test pointing to mx.mail.test.").length).toBeGreaterThan(0);
    expect(screen.getByText("1 of 2 required records found")).toBeInTheDocument();

    // Opening the page checked once; nothing changed yet: the poll checks again and again.
    expect(checks()).toHaveLength(1);
    await flush(POLL_INTERVAL_MS * 2);
    expect(checks()).toHaveLength(3);
    expect(rowStatus(container, "MX @")).toBe("missing");

    // DNS propagates: the next check finds the record, then polling stops.
    nextCheck = () => verified;
    await flush(POLL_INTERVAL_MS);
    expect(checks()).toHaveLength(4);
    expect(rowStatus(container, "MX @")).toBe("ok");
    expect(screen.getByText("2 of 2 required records found")).toBeInTheDocument();
    expect(screen.queryByText("Add an MX record for acme.test pointing to mx.mail.test.")).toBeNull();

    await flush(POLL_INTERVAL_MS * 6);
    expect(checks()).toHaveLength(4);
  });

  it("does not poll while the tab is hidden", async () => {
    Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
    try {
      renderPage();
      await flush();
      await flush(POLL_INTERVAL_MS * 6);
      expect(checks()).toHaveLength(0);
    } finally {
      Object.defineProperty(document, "hidden", { configurable: true, get: () => false });
    }
  });

  it("re-checks on demand with the CSRF token and shows progress on the button", async () => {
    let finish: (detail: DomainDetail) => void = () => {};
    const { container } = renderPage();
    await flush();
    nextCheck = () => new Promise((resolve) => (finish = resolve));
    fireEvent.click(screen.getByRole("button", { name: "Check now" }));
    await flush();
    const busy = screen.getByRole("button", { name: /Checking/ });
    expect(busy).toBeDisabled();
    expect(busy).toHaveAttribute("aria-busy", "true");
    finish(verified);
    await flush();
    expect(checks().at(-1)?.headers["X-CSRF-Token"]).toBe("t0ken");
    expect(rowStatus(container, "MX @")).toBe("ok");
    expect(screen.getByRole("button", { name: "Check now" })).toBeEnabled();
  });

  it("spells out what deleting the domain deletes and needs its name typed", async () => {
    renderPage();
    await flush();
    fireEvent.click(screen.getByRole("button", { name: "Delete domain" }));
    const dialog = screen.getByRole("dialog", { name: "Delete acme.test?" });
    expect(dialog).toHaveTextContent("2 mailboxes with 40 messages in them");
    expect(dialog).toHaveTextContent("1 API key");
    expect(dialog).toHaveTextContent("0 webhooks");
    const confirm = screen.getAllByRole("button", { name: "Delete domain" }).at(-1)!;
    expect(confirm).toBeDisabled();
    fireEvent.change(screen.getByLabelText(/to confirm/), { target: { value: "acme.test" } });
    expect(confirm).toBeEnabled();
  });
});
