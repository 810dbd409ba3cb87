import { PageHeader } from "../components/Card";
import { EmptyState } from "../components/EmptyState";

export default function DomainPage() {
  return (
    <>
      <PageHeader title="Domain" description="DNS records and verification." />
      <EmptyState title="Domain">This page is being built.</EmptyState>
    </>
  );
}
