import { PageHeader } from "../components/Card";

export default function TeamPage() {
  return <PageHeader title="Team" />;
}
