import { AuthLayout } from "../layouts/AuthLayout";

export default function InvitePage() {
  return <AuthLayout title="Join your team">…</AuthLayout>;
}
