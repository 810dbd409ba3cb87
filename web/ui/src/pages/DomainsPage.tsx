import { PageHeader } from "../components/Card";
import { EmptyState } from "../components/EmptyState";

export default function DomainsPage() {
  return (
    <>
      <PageHeader title="Domains" description="Your domains and the DNS records each needs." />
      <EmptyState title="Domains">This page is being built.</EmptyState>
    </>
  );
}
