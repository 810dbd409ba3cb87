import { PageHeader } from "../components/Card";
import { EmptyState } from "../components/EmptyState";

export default function DeveloperPage() {
  return (
    <>
      <PageHeader title="Developer" description="API keys and webhooks per domain." />
      <EmptyState title="Developer">This page is being built.</EmptyState>
    </>
  );
}
