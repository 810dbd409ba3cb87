import { PageHeader } from "../components/Card";
import { EmptyState } from "../components/EmptyState";

export default function MailboxesPage() {
  return (
    <>
      <PageHeader title="Mailboxes" description="Addresses on your domains, and how to connect a mail app." />
      <EmptyState title="Mailboxes">This page is being built.</EmptyState>
    </>
  );
}
