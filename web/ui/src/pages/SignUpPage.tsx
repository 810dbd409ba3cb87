import { AuthLayout } from "../layouts/AuthLayout";

export default function SignUpPage() {
  return <AuthLayout title="Create your account">…</AuthLayout>;
}
