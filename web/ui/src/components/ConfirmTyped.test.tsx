import { render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { useState } from "react";
import { describe, expect, it, vi } from "vitest";
import { ConfirmTyped } from "./ConfirmTyped";

function Harness({ onConfirm }: { onConfirm: () => Promise<unknown> }) {
  const [open, setOpen] = useState(false);
  return (
    <>
      <button type="button" onClick={() => setOpen(true)}>
        Delete domain
      </button>
      <ConfirmTyped
        open={open}
        onClose={() => setOpen(false)}
        onConfirm={onConfirm}
        title="Delete acme.test?"
        description="Its 3 mailboxes and every message in them are deleted."
        confirmText="acme.test"
        actionLabel="Delete domain"
      />
    </>
  );
}

describe("ConfirmTyped", () => {
  it("runs the action only once the exact name is typed", async () => {
    const user = userEvent.setup();
    const onConfirm = vi.fn(async () => undefined);
    render(<Harness onConfirm={onConfirm} />);
    await user.click(screen.getByRole("button", { name: "Delete domain" }));

    const dialog = screen.getByRole("dialog", { name: "Delete acme.test?" });
    expect(dialog).toHaveAccessibleDescription("Its 3 mailboxes and every message in them are deleted.");
    const input = screen.getByLabelText(/Type acme.test to confirm/);
    expect(input).toHaveFocus();
    const confirm = screen.getAllByRole("button", { name: "Delete domain" }).at(-1)!;
    expect(confirm).toBeDisabled();

    await user.type(input, "acme.tes");
    expect(confirm).toBeDisabled();
    await user.type(input, "{Enter}");
    expect(onConfirm).not.toHaveBeenCalled();

    await user.type(input, "t");
    expect(confirm).toBeEnabled();
    await user.click(confirm);
    expect(onConfirm).toHaveBeenCalledTimes(1);
    expect(screen.queryByRole("dialog")).not.toBeInTheDocument();
    // Focus goes back to what opened the dialog (as the dialog's cleanup runs).
    await waitFor(() => expect(screen.getByRole("button", { name: "Delete domain" })).toHaveFocus());
  });

  it("keeps the dialog open and shows the error when the action fails", async () => {
    const user = userEvent.setup();
    const onConfirm = vi.fn(async () => {
      throw new Error("The domain has scheduled sends; cancel them first.");
    });
    render(<Harness onConfirm={onConfirm} />);
    await user.click(screen.getByRole("button", { name: "Delete domain" }));
    await user.type(screen.getByLabelText(/Type acme.test to confirm/), "acme.test{Enter}");
    expect(await screen.findByRole("alert")).toHaveTextContent("The domain has scheduled sends; cancel them first.");
    expect(screen.getByRole("dialog")).toBeInTheDocument();
  });

  it("closes on Escape and starts empty when opened again", async () => {
    const user = userEvent.setup();
    render(<Harness onConfirm={async () => undefined} />);
    await user.click(screen.getByRole("button", { name: "Delete domain" }));
    await user.type(screen.getByLabelText(/Type acme.test to confirm/), "acme");
    await user.keyboard("{Escape}");
    expect(screen.queryByRole("dialog")).not.toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Delete domain" }));
    expect(screen.getByLabelText(/Type acme.test to confirm/)).toHaveValue("");
  });

  it("keeps Tab inside the dialog", async () => {
    const user = userEvent.setup();
    render(<Harness onConfirm={async () => undefined} />);
    await user.click(screen.getByRole("button", { name: "Delete domain" }));
    const input = screen.getByLabelText(/Type acme.test to confirm/);
    await user.type(input, "acme.test");
    const dialog = screen.getByRole("dialog");
    for (let step = 0; step < 5; step++) {
      await user.tab();
      expect(dialog).toContainElement(document.activeElement as HTMLElement);
    }
    await user.tab({ shift: true });
    expect(dialog).toContainElement(document.activeElement as HTMLElement);
  });
});
