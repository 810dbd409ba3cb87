import { PageHeader } from "../components/Card";

export default function SecurityPage() {
  return <PageHeader title="Security" />;
}
