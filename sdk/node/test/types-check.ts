// Compiled with `npm run typecheck` (tsc --noEmit), never run: what a TypeScript user writes must
// type-check, and misuse must not.
import {
  type CampaignSendResult,
  type CancelResult,
  type Email,
  type EmailDetail,
  Mailmark,
  MailmarkError,
  RateLimitError,
  type TransactionalSendResult,
} from "mailmark-sdk";

const client = new Mailmark("dm_live_key", { baseUrl: "http://127.0.0.1:8025", timeoutMs: 5000 });

export async function usage(): Promise<void> {
  const one: TransactionalSendResult = await client.send({
    from: "hello@yourdomain.com",
    to: "user@example.com",
    subject: "Hello!",
    html: "<p>Hello from Mailmark!</p>",
  });
  const many: CampaignSendResult = await client.send({
    type: "campaign",
    from: "hello@yourdomain.com",
    to: ["a@example.com", "b@example.com"],
    subject: "Hi {{firstName}}",
    text: "Hello {{firstName}}",
    variables: { "a@example.com": { firstName: "A" } },
    scheduledAt: new Date(),
  });
  const ids: string[] = [one.messageId, ...many.messageIds, many.batchId];
  const mailbox = await client.createMailbox({ address: "support", displayName: "Support Team" });
  const deleted: true = (await client.deleteMailbox(mailbox.fullAddress)).deleted;
  const group = await client.createSenderGroup({ name: "Marketing", mailboxes: "all", emails: ids });
  await client.updateSenderGroup(group._id, { addEmails: ["new@example.com"] });
  const attached: TransactionalSendResult = await client.send({
    from: "hello@yourdomain.com",
    to: "user@example.com",
    subject: "Invoice",
    html: '<img src="cid:logo">',
    attachments: [
      { path: "./invoice.pdf" },
      { filename: "logo.png", content: new Uint8Array([1, 2]), contentType: "image/png", contentId: "logo" },
    ],
    tags: ["invoice"],
  });
  const tags: string[] = (await client.listEmails({ tag: "invoice" })).data[0]?.tags ?? [];
  void [attached, tags];
  const page = await client.listEmails({ status: "queued", limit: 20 });
  const detail: EmailDetail = await client.getEmail(page.data[0]?._id ?? "1");
  const cursor: string | null = (await client.listSuppressions()).nextCursor;
  const hook = await client.createWebhook({ url: "https://hooks.example.com", events: ["email.canceled"] });
  void [deleted, detail.recipients, cursor, hook.secret];
  const canceled: CancelResult = await client.cancelEmail(one.messageId);
  const waiting: string[] = canceled.canceled;
  const moved: Email = await client.rescheduleEmail(one.messageId, new Date());
  void [waiting, canceled.notCanceled[0]?.status, moved.scheduledAt];

  // @ts-expect-error: a transactional send has no batchId
  void (await client.send({ from: "a@b.c", to: "d@e.f", subject: "s", text: "t" })).batchId;
  // @ts-expect-error: "from" is required
  await client.send({ to: "d@e.f", subject: "s", text: "t" });
  // @ts-expect-error: a time is required
  await client.rescheduleEmail("1");
  // @ts-expect-error: content is bytes, not text
  await client.send({ from: "a@b.c", to: "d@e.f", subject: "s", text: "t", attachments: [{ content: "x" }] });
  // @ts-expect-error: not an event Mailmark sends
  await client.createWebhook({ url: "https://hooks.example.com", events: ["email.sent"] });

  try {
    await client.listMailboxes();
  } catch (error) {
    if (error instanceof RateLimitError) {
      const wait: number | undefined = error.retryAfter;
      void wait;
    } else if (error instanceof MailmarkError) {
      const fields: [number, string, string | undefined] = [error.status, error.code, error.field];
      void fields;
    }
  }
}
