import { fireEvent, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";

import type { DomainRelay as Relay } from "../../../api/relays";
import { ToastProvider } from "../../../components/Toast";
import { fakeServer, problem } from "../../../test/fakeServer";
import { DomainRelay } from "./DomainRelay";

const URL = "/api/domains/acme.test/relay";

const byDefault: Relay = {
  domain: "acme.test",
  choice: "default",
  host: null,
  port: null,
  tls: null,
  username: null,
  passwordSet: false,
  installationRelay: "smtp.provider.test:587",
};

const ownRelay: Relay = {
  ...byDefault,
  choice: "relay",
  host: "smtp.relay.test",
  port: 465,
  tls: "implicit",
  username: "acme",
  passwordSet: true,
};

function show() {
  render(
    <ToastProvider>
      <DomainRelay name="acme.test" />
    </ToastProvider>,
  );
}

afterEach(() => vi.unstubAllGlobals());

describe("DomainRelay", () => {
  it("names the server's relay as the default", async () => {
    fakeServer({ [`GET ${URL}`]: { json: byDefault } });
    show();
    expect(await screen.findByRole("radio", { name: "Server default" })).toBeChecked();
    expect(screen.getByText("Through the server's relay host, smtp.provider.test:587.")).toBeInTheDocument();
    expect(screen.queryByLabelText("Relay host")).toBeNull();
    expect(screen.getByRole("button", { name: "Save" })).toBeDisabled();
  });

  it("keeps the saved password by sending none, and never shows it", async () => {
    const server = fakeServer({
      [`GET ${URL}`]: { json: ownRelay },
      [`GET /api/session`]: { json: { csrfToken: "csrf-1" } },
      [`PUT ${URL}`]: { json: { ...ownRelay, port: 2465 } },
    });
    show();
    const password = await screen.findByLabelText("Password");
    expect(password).toHaveValue("");
    expect(password).toHaveAttribute("placeholder", "Saved");
    fireEvent.change(screen.getByLabelText("Port"), { target: { value: "2465" } });
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    expect(await screen.findByText("Mail from acme.test now goes through smtp.relay.test.")).toBeInTheDocument();
    const put = server.requests.find((request) => request.method === "PUT");
    expect(put?.body).toEqual({
      choice: "relay",
      host: "smtp.relay.test",
      port: 2465,
      tls: "implicit",
      username: "acme",
      password: "",
    });
  });

  it("shows the server's refusal under the field it names", async () => {
    fakeServer({
      [`GET ${URL}`]: { json: byDefault },
      [`GET /api/session`]: { json: { csrfToken: "csrf-1" } },
      [`PUT ${URL}`]: { status: 400, json: problem("invalid_input", "'x:25' is not a host name such as smtp.relay.example.", "host") },
    });
    show();
    fireEvent.click(await screen.findByRole("radio", { name: "Through a relay host" }));
    fireEvent.change(screen.getByLabelText("Relay host"), { target: { value: "x:25" } });
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("'x:25' is not a host name");
    expect(screen.getByLabelText("Relay host")).toHaveAttribute("aria-invalid", "true");
  });
});
