import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";

import type { DomainSummary } from "../../../api/domains";
import { fakeServer, problem } from "../../../test/fakeServer";
import { NewMailboxDialog } from "./NewMailboxDialog";

const domain = (name: string, verified: boolean): DomainSummary => ({
  name,
  status: verified ? "verified" : "pending",
  verified,
  createdAt: "2026-12-05T22:00:00Z",
  mailboxCount: 0,
  lastCheckedAt: null,
  aliasOf: null,
});

const domains = [domain("waiting.test", false), domain("acme.test", true), domain("acme.example", true)];

afterEach(() => vi.unstubAllGlobals());

describe("NewMailboxDialog", () => {
  it("offers verified domains, shows the whole address, and sends the local part", async () => {
    const server = fakeServer({
      "GET /api/session": { json: { signedIn: true, csrfToken: "t0ken" } },
      "POST /api/mailboxes": (request) => ({
        status: 201,
        json: { address: `${(request.body as { localPart: string }).localPart}@acme.example` },
      }),
    });
    const onCreated = vi.fn();
    render(<NewMailboxDialog open onClose={() => {}} domains={domains} onCreated={onCreated} />);
    const picker = screen.getByLabelText("Domain");
    expect(picker).toHaveValue("acme.test");
    expect(screen.getByRole("option", { name: "waiting.test (waiting for DNS)" })).toBeDisabled();
    fireEvent.change(picker, { target: { value: "acme.example" } });
    fireEvent.change(screen.getByLabelText("Address"), { target: { value: "hello" } });
    expect(screen.getByText("@acme.example")).toBeInTheDocument();
    expect(screen.getByText("The address will be hello@acme.example.")).toBeInTheDocument();
    fireEvent.click(screen.getByRole("button", { name: "Create mailbox" }));
    await waitFor(() => expect(onCreated).toHaveBeenCalled());
    expect(server.requests.find((request) => request.method === "POST" && request.path === "/api/mailboxes")?.body).toEqual({
      domain: "acme.example",
      localPart: "hello",
    });
  });

  it("shows the plan's limit text where the action was, and stays open", async () => {
    const limit = "Mailbox limit reached. Your plan allows 3 mailbox(es). Please upgrade to add more.";
    fakeServer({
      "GET /api/session": { json: { signedIn: true, csrfToken: "t0ken" } },
      "POST /api/mailboxes": { status: 403, json: problem("quota_exceeded", limit) },
    });
    const onCreated = vi.fn();
    render(<NewMailboxDialog open onClose={() => {}} domains={domains} onCreated={onCreated} />);
    fireEvent.change(screen.getByLabelText("Address"), { target: { value: "four" } });
    fireEvent.click(screen.getByRole("button", { name: "Create mailbox" }));
    const dialog = await screen.findByRole("dialog", { name: "New mailbox" });
    await waitFor(() => expect(dialog).toHaveTextContent(limit));
    expect(onCreated).not.toHaveBeenCalled();
  });
});
