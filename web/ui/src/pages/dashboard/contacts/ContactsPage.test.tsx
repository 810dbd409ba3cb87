import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter } from "react-router";
import { afterEach, describe, expect, it, vi } from "vitest";

import type { Contact, ContactList } from "../../../api/contacts";
import { ToastProvider } from "../../../components/Toast";
import { fakeServer } from "../../../test/fakeServer";
import ContactsPage from "./ContactsPage";

function contact(id: string, email: string, overrides: Partial<Contact> = {}): Contact {
  return {
    _id: id,
    email,
    firstName: "",
    lastName: "",
    company: "",
    fields: {},
    tags: [],
    status: "subscribed",
    suppressed: false,
    listIds: [],
    createdAt: "2026-12-06T08:00:00Z",
    updatedAt: "2026-12-06T08:00:00Z",
    ...overrides,
  };
}

const leads: ContactList = { _id: "5", name: "Leads", filter: null, size: 1, createdAt: "", updatedAt: "" };

function show() {
  render(
    <MemoryRouter>
      <ToastProvider>
        <ContactsPage />
      </ToastProvider>
    </MemoryRouter>,
  );
}

afterEach(() => vi.unstubAllGlobals());

describe("the contacts page", () => {
  it("marks a suppressed address and names each contact's lists", async () => {
    fakeServer({
      "GET /api/lists": { json: [leads] },
      "GET /api/contacts?limit=50": {
        json: {
          data: [
            contact("1", "ann@example.com", { firstName: "Ann", listIds: ["5"] }),
            contact("2", "gone@example.com", { status: "bounced", suppressed: true }),
          ],
          nextCursor: null,
        },
      },
    });
    show();
    const table = await screen.findByRole("table", { name: "Contacts" });
    const gone = within(table).getByRole("row", { name: /gone@example\.com/ });
    expect(within(gone).getByText("Suppressed")).toBeInTheDocument();
    expect(within(gone).getByText("Bounced")).toBeInTheDocument();
    const ann = within(table).getByRole("row", { name: /ann@example\.com/ });
    expect(within(ann).queryByText("Suppressed")).toBeNull();
    expect(within(ann).getByText("Leads")).toBeInTheDocument();
  });

  it("asks the server for the suppressed ones and pages with its cursors", async () => {
    const user = userEvent.setup();
    const server = fakeServer({
      "GET /api/lists": { json: [] },
      "GET /api/contacts?limit=50": { json: { data: [contact("1", "a@example.com")], nextCursor: "1" } },
      "GET /api/contacts?cursor=1&limit=50": { json: { data: [contact("2", "b@example.com")], nextCursor: null } },
      "GET /api/contacts?suppressed=true&limit=50": { json: { data: [], nextCursor: null } },
    });
    show();
    await screen.findByText("a@example.com", { selector: "table *" });
    await user.click(screen.getByRole("button", { name: "Next" }));
    await screen.findByText("b@example.com", { selector: "table *" });
    expect(screen.getByText(/Page 2/)).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Next" })).toBeDisabled();
    await user.click(screen.getByRole("button", { name: "Previous" }));
    await screen.findByText("a@example.com", { selector: "table *" });

    // A new filter on page 2 starts from the first page of what it matches.
    await user.click(screen.getByRole("button", { name: "Next" }));
    await screen.findByText("b@example.com", { selector: "table *" });
    await user.selectOptions(screen.getByLabelText("Status"), "suppressed");
    await screen.findByText("No contact matches these filters.");
    const paths = () => server.requests.map((r) => r.path);
    await waitFor(() => expect(paths()).toContain("/api/contacts?suppressed=true&limit=50"));
    expect(paths().filter((path) => path.includes("suppressed") && path.includes("cursor"))).toEqual([]);
  });
});
