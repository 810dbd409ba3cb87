import { AuthLayout } from "../layouts/AuthLayout";

export default function SetupPage() {
  return <AuthLayout title="Set up Mailmark">…</AuthLayout>;
}
