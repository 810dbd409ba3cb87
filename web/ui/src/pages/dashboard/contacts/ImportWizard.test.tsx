import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter } from "react-router";
import { afterEach, describe, expect, it, vi } from "vitest";

import type { ContactImport } from "../../../api/contacts";
import { setCsrfToken } from "../../../api/client";
import { fakeServer, problem } from "../../../test/fakeServer";
import ImportWizard from "./ImportWizard";

const CSV = "Mail,Name\r\nann@example.com,Ann\r\nnope,Bob\r\n";

function query(mapping: Record<string, string>, extra: Record<string, string>) {
  return new URLSearchParams({ mapping: JSON.stringify(mapping), ...extra }).toString();
}

const job: ContactImport = {
  _id: "9",
  status: "running",
  onDuplicate: "update",
  mapping: {},
  listId: null,
  totalBytes: 100,
  bytesRead: 0,
  rowsDone: 0,
  created: 0,
  updated: 0,
  skipped: 0,
  failed: 0,
  errors: [],
  failure: "",
};

afterEach(() => vi.unstubAllGlobals());

describe("the import wizard", () => {
  it("maps a column the server could not guess, imports, follows progress and lists the bad rows", async () => {
    setCsrfToken("csrf-1");
    const user = userEvent.setup();
    const guessed = { Mail: "field:mail", Name: "field:name" };
    const chosen = { Mail: "email", Name: "first_name" };
    const server = fakeServer({
      "POST /api/contacts/import/columns?rows=5": {
        json: { columns: ["Mail", "Name"], guessed, rows: [["ann@example.com", "Ann"], ["nope", "Bob"]] },
      },
      [`POST /api/contacts/import/preview?${query(guessed, { rows: "5" })}`]: {
        status: 400,
        json: problem("invalid_input", "No column holds the email address: name one 'email' or map it.", "mapping"),
      },
      [`POST /api/contacts/import/preview?${query({ ...guessed, Mail: "email" }, { rows: "5" })}`]: {
        status: 400,
        json: problem("invalid_input", "still not", "mapping"),
      },
      [`POST /api/contacts/import/preview?${query(chosen, { rows: "5" })}`]: {
        json: {
          columns: ["Mail", "Name"],
          mapping: chosen,
          rows: [
            { row: 2, contact: { _id: "", email: "ann@example.com", firstName: "Ann", lastName: "", company: "", fields: {}, tags: [] }, error: null },
            { row: 3, contact: null, error: "The email address 'nope' is not a valid email address." },
          ],
        },
      },
      "GET /api/lists": { json: [] },
      [`POST /api/contacts/import?${query(chosen, { onDuplicate: "skip" })}`]: { status: 202, json: job },
      "GET /api/contacts/import/9": [
        { json: { ...job, bytesRead: 40, rowsDone: 1 } },
        {
          json: {
            ...job,
            status: "done",
            bytesRead: 100,
            rowsDone: 2,
            created: 1,
            failed: 1,
            errors: [{ row: 3, reason: "The email address 'nope' is not a valid email address." }],
          },
        },
      ],
    });
    render(
      <MemoryRouter>
        <ImportWizard />
      </MemoryRouter>,
    );

    await user.upload(screen.getByLabelText(/Choose a CSV file/), new File([CSV], "leads.csv", { type: "text/csv" }));
    expect(await screen.findByText(/No column holds the email address/)).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Next" })).toBeDisabled();
    expect(screen.getByRole("table", { name: "Column mapping" })).toHaveTextContent("ann@example.com, nope");

    await user.selectOptions(screen.getByLabelText("Import Mail as"), "email");
    await user.selectOptions(screen.getByLabelText("Import Name as"), "first_name");
    const preview = await screen.findByRole("table", { name: "Preview of the first rows" });
    expect(within(preview).getByText(/Not imported: The email address 'nope'/)).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Next" }));

    await user.click(await screen.findByLabelText(/Keep the contact as it is/));
    await user.click(screen.getByRole("button", { name: "Start import" }));

    expect(await screen.findByRole("heading", { name: "Importing…" })).toBeInTheDocument();
    expect(await screen.findByRole("heading", { name: "Import finished" }, { timeout: 5000 })).toBeInTheDocument();
    expect(screen.getByRole("progressbar", { name: "Import progress" })).toHaveAttribute("aria-valuenow", "100");
    const errors = screen.getByRole("table", { name: "Rows not imported" });
    expect(within(errors).getAllByRole("row")).toHaveLength(2);
    expect(within(errors).getByText("3")).toBeInTheDocument();
    // The whole file went up, with the CSRF token, to the import itself.
    const upload = server.requests.find((r) => r.path.startsWith("/api/contacts/import?"))!;
    expect(upload.headers["X-CSRF-Token"]).toBe("csrf-1");
    expect(server.fetch.mock.calls.find(([path]) => String(path).startsWith("/api/contacts/import?"))![1]!.body).toBeInstanceOf(Blob);
  });
});
