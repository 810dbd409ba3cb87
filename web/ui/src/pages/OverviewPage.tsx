import { PageHeader } from "../components/Card";

export default function OverviewPage() {
  return <PageHeader title="Overview" />;
}
