import { render, screen, waitFor, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";

import type { ReportOverview, ReportSource } from "../../../api/domains";
import { fakeServer } from "../../../test/fakeServer";
import { DomainReports, percent } from "./DomainReports";

function source(overrides: Partial<ReportSource>): ReportSource {
  return {
    sourceIp: "203.0.113.25",
    messages: 17,
    dmarcPass: 17,
    spfPass: 17,
    spfAligned: 17,
    dkimPass: 17,
    dkimAligned: 17,
    quarantined: 0,
    rejected: 0,
    reporters: 2,
    ...overrides,
  };
}

const empty: ReportOverview = {
  domain: "acme.test",
  reports: 0,
  failedReports: 0,
  totals: source({ sourceIp: "", messages: 0, dmarcPass: 0, spfPass: 0, spfAligned: 0, dkimPass: 0, dkimAligned: 0, reporters: 0 }),
  sources: [],
  tls: { successfulSessions: 0, failedSessions: 0, failures: [] },
  recent: [],
};

const some: ReportOverview = {
  ...empty,
  reports: 3,
  failedReports: 1,
  totals: source({ sourceIp: "", messages: 20, dmarcPass: 17, spfAligned: 17, dkimAligned: 17, quarantined: 3 }),
  sources: [source({}), source({ sourceIp: "198.51.100.7", messages: 3, dmarcPass: 0, spfAligned: 0, dkimAligned: 0, quarantined: 3 })],
  tls: {
    successfulSessions: 5326,
    failedSessions: 303,
    failures: [{ resultType: "starttls-not-supported", receivingMx: "mx2.mail.acme.test", sessions: 200 }],
  },
  recent: [
    {
      kind: "dmarc",
      status: "failed",
      organization: "",
      reportId: null,
      begin: null,
      end: null,
      policy: {},
      messages: 0,
      reason: "The report's XML has a DOCTYPE; reports never need one.",
      receivedAt: "2026-12-05T10:00:00Z",
    },
    {
      kind: "dmarc",
      status: "parsed",
      organization: "google.com",
      reportId: "1",
      begin: "2024-05-01T00:00:00Z",
      end: "2024-05-01T23:59:59Z",
      policy: { p: "quarantine" },
      messages: 15,
      reason: null,
      receivedAt: "2026-12-05T09:00:00Z",
    },
  ],
};

afterEach(() => vi.unstubAllGlobals());

describe("DomainReports", () => {
  it("explains what will appear before any report came", async () => {
    fakeServer({ "GET /api/domains/acme.test/reports": { json: empty } });
    render(<DomainReports name="acme.test" />);
    expect(await screen.findByText("No reports yet")).toBeInTheDocument();
    expect(screen.getByText(/dmarc@acme.test/)).toHaveTextContent("tls-reports@acme.test");
  });

  it("lists sources with their pass rates, TLS failures and unreadable reports", async () => {
    fakeServer({ "GET /api/domains/acme.test/reports": { json: some } });
    render(<DomainReports name="acme.test" />);
    const table = await screen.findByRole("table", { name: "Sending sources" });
    const rows = within(table).getAllByRole("row");
    expect(rows).toHaveLength(3);
    expect(rows[1]).toHaveTextContent("203.0.113.25");
    expect(rows[1]).toHaveTextContent("100%");
    expect(rows[2]).toHaveTextContent("198.51.100.7");
    expect(rows[2]).toHaveTextContent("0%");
    expect(rows[2]).toHaveTextContent("3 / 0");
    expect(screen.getByText(/20 messages reported: 85% pass DMARC/)).toBeInTheDocument();
    expect(screen.getByRole("list", { name: "TLS failures" })).toHaveTextContent(
      "starttls-not-supported at mx2.mail.acme.test: 200 sessions",
    );
    expect(screen.getByText(/1 report could not be read/)).toHaveTextContent("has a DOCTYPE");
  });

  it("shows the server's error", async () => {
    fakeServer({
      "GET /api/domains/acme.test/reports": {
        status: 403,
        json: { error: { code: "forbidden", message: "Only an owner or an admin can see a domain's reports." } },
      },
    });
    render(<DomainReports name="acme.test" />);
    await waitFor(() => expect(screen.getByRole("alert")).toHaveTextContent("Only an owner or an admin"));
  });

  it("rounds rates and has none for nothing", () => {
    expect(percent(17, 20)).toBe("85%");
    expect(percent(0, 0)).toBe("—");
  });
});
