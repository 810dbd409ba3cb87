import { AuthLayout } from "../layouts/AuthLayout";

export default function SignInPage() {
  return <AuthLayout title="Sign in">…</AuthLayout>;
}
