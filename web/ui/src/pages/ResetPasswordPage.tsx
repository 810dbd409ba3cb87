import { AuthLayout } from "../layouts/AuthLayout";

export default function ResetPasswordPage() {
  return <AuthLayout title="Choose a new password">…</AuthLayout>;
}
