import { describe, expect, it } from "vitest";
import type { MessageDetail } from "../../../api/mail";
import {
  editableHtml,
  escapeHtml,
  forwardSubject,
  htmlToText,
  quoteForForward,
  quoteForReply,
  replyRecipients,
  replySubject,
  signatureHtml,
} from "./quote";

function message(overrides: Partial<MessageDetail> = {}): MessageDetail {
  return {
    folderId: 1,
    folder: "INBOX",
    role: "inbox",
    uid: 7,
    messageId: "<m1@x.test>",
    inReplyTo: null,
    references: [],
    from: { name: "Anna", address: "anna@x.test" },
    sender: null,
    replyTo: [],
    to: [{ name: "", address: "me@acme.test" }, { name: "Bob", address: "bob@y.test" }],
    cc: [{ name: "", address: "carl@z.test" }],
    bcc: [],
    subject: "Plans",
    date: "2026-03-01T10:00:00Z",
    receivedAt: "2026-03-01T10:00:01Z",
    flags: [],
    seen: true,
    starred: false,
    snippet: "",
    size: 100,
    text: "Hello <team>\n\nSecond & last",
    hasHtml: false,
    htmlUrl: null,
    rawUrl: "/raw",
    attachments: [],
    remoteImages: false,
    imagesAllowed: false,
    auth: null,
    ...overrides,
  };
}

describe("reply and forward", () => {
  it("prefixes subjects once", () => {
    expect(replySubject("Plans")).toBe("Re: Plans");
    expect(replySubject("Re: RE: Fwd: Plans")).toBe("Re: Plans");
    expect(forwardSubject("Re: Plans")).toBe("Fwd: Plans");
    expect(forwardSubject("AW: Plans")).toBe("Fwd: Plans");
  });

  it("replies to the sender, or Reply-To when there is one", () => {
    expect(replyRecipients(message(), "me@acme.test", false)).toEqual({ to: [{ name: "Anna", address: "anna@x.test" }], cc: [] });
    const withReplyTo = message({ replyTo: [{ name: "", address: "list@x.test" }] });
    expect(replyRecipients(withReplyTo, "me@acme.test", false).to).toEqual([{ name: "", address: "list@x.test" }]);
  });

  it("reply all copies the others but never ourselves or the sender twice", () => {
    const { to, cc } = replyRecipients(message({ cc: [{ name: "", address: "carl@z.test" }, { name: "", address: "ANNA@x.test" }] }), "me@acme.test", true);
    expect(to.map((a) => a.address)).toEqual(["anna@x.test"]);
    expect(cc.map((a) => a.address)).toEqual(["bob@y.test", "carl@z.test"]);
  });

  it("replying to our own sent message goes to its recipients", () => {
    const sent = message({ from: { name: "", address: "me@acme.test" }, to: [{ name: "", address: "bob@y.test" }], cc: [] });
    expect(replyRecipients(sent, "me@acme.test", false).to.map((a) => a.address)).toEqual(["bob@y.test"]);
  });

  it("quotes the original escaped, in a blockquote after an attribution", () => {
    const html = quoteForReply(message());
    expect(html).toContain("Anna &lt;anna@x.test&gt; wrote:");
    expect(html).toContain("<blockquote><p>Hello &lt;team&gt;</p><p>Second &amp; last</p></blockquote>");
    expect(html).not.toContain("<team>");
  });

  it("forwards with the original's headers", () => {
    const html = quoteForForward(message());
    expect(html).toContain("---------- Forwarded message ----------");
    expect(html).toContain("Subject: Plans");
    expect(html).toContain("To: me@acme.test, Bob &lt;bob@y.test&gt;");
    expect(html).toContain("Cc: carl@z.test");
  });

  it("turns editor HTML into text and signatures into editor HTML", () => {
    expect(htmlToText("<p>a &amp; b</p><p>c<br>d</p>")).toBe("a & b\nc\nd");
    expect(signatureHtml("Anna\nSales", "text")).toBe("<p>-- </p><p>Anna<br>Sales</p>");
    expect(signatureHtml("  ", "text")).toBe("");
    expect(escapeHtml('<a href="x">')).toBe("&lt;a href=&quot;x&quot;&gt;");
  });
});

describe("editing a saved draft", () => {
  it("keeps the body without styles", () => {
    const document =
      '<!doctype html><html><head><style>p{color:red}</style></head><body class="x"><p style="color: red">Hi</p><style>a{}</style><p STYLE=\'x\'>there</p></body></html>';
    expect(editableHtml(document)).toBe("<p>Hi</p><p>there</p>");
    expect(editableHtml("<p>bare</p>")).toBe("<p>bare</p>");
  });
});
