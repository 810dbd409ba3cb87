import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";

import type { Mailbox } from "../../../api/mailboxes";
import { ToastProvider } from "../../../components/Toast";
import { fakeServer } from "../../../test/fakeServer";
import { SignatureCard } from "./SignatureCard";

const mailbox: Mailbox = {
  id: 1,
  address: "sales@acme.test",
  localPart: "sales",
  domain: "acme.test",
  displayName: "Sales",
  signature: "",
  signatureFormat: "text",
  hasPassword: false,
  assignedUserIds: [],
  createdAt: "2026-12-05T22:00:00Z",
};

afterEach(() => vi.unstubAllGlobals());

describe("SignatureCard", () => {
  it("previews only what the server saved, never what was typed", async () => {
    const typed = '<p>Hi</p><img src=x onerror="alert(1)"><script>alert(2)</script>';
    const sanitised = '<p>Hi</p><img src="x">';
    const server = fakeServer({
      "GET /api/session": { json: { signedIn: true, csrfToken: "t0ken" } },
      "PATCH /api/mailboxes/sales%40acme.test": {
        json: { ...mailbox, signature: sanitised, signatureFormat: "html" },
      },
    });
    const onSaved = vi.fn();
    const { rerender } = render(
      <ToastProvider>
        <SignatureCard mailbox={mailbox} onSaved={onSaved} />
      </ToastProvider>,
    );
    fireEvent.click(screen.getByRole("radio", { name: "HTML" }));
    fireEvent.change(screen.getByLabelText("Signature"), { target: { value: typed } });
    // Typing changes nothing in the preview: nothing is rendered from it.
    expect(screen.queryByTitle("Signature preview")).toBeNull();
    expect(screen.getByText("No signature yet.")).toBeInTheDocument();

    fireEvent.click(screen.getByRole("button", { name: "Save signature" }));
    await waitFor(() => expect(onSaved).toHaveBeenCalled());
    const saved = onSaved.mock.calls[0]![0] as Mailbox;
    const patch = server.requests.find((request) => request.method === "PATCH");
    expect(patch?.body).toEqual({ signature: typed, signatureFormat: "html" });

    rerender(
      <ToastProvider>
        <SignatureCard mailbox={saved} onSaved={onSaved} />
      </ToastProvider>,
    );
    const frame = screen.getByTitle("Signature preview");
    expect(frame).toHaveAttribute("sandbox", "");
    expect(frame).toHaveAttribute("srcdoc", sanitised);
    // The sanitised value is back in the editor, so what is saved next is what is shown.
    expect(screen.getByLabelText("Signature")).toHaveValue(sanitised);
  });

  it("shows a plain-text signature as text", () => {
    render(
      <ToastProvider>
        <SignatureCard mailbox={{ ...mailbox, signature: "<b>not bold</b>\n-- \nSales" }} onSaved={() => {}} />
      </ToastProvider>,
    );
    expect(screen.queryByTitle("Signature preview")).toBeNull();
    expect(screen.getByText(/<b>not bold<\/b>/, { selector: "pre" })).toBeInTheDocument();
  });
});
