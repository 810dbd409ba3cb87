import { AuthLayout } from "../layouts/AuthLayout";

export default function ForgotPasswordPage() {
  return <AuthLayout title="Reset your password">…</AuthLayout>;
}
