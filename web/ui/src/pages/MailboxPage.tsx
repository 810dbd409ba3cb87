import { PageHeader } from "../components/Card";
import { EmptyState } from "../components/EmptyState";

export default function MailboxPage() {
  return (
    <>
      <PageHeader title="Mailbox" description="Display name, signature, password and connection settings." />
      <EmptyState title="Mailbox">This page is being built.</EmptyState>
    </>
  );
}
