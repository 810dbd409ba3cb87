import { useState, type FormEvent } from "react";
import { Link, useNavigate } from "react-router";
import { authApi } from "../api/auth";
import type { ApiError } from "../api/client";
import { useAuth } from "../auth/AuthContext";
import { Alert } from "../components/Alert";
import { Button } from "../components/Button";
import { Input } from "../components/Field";
import { PasswordInput } from "../components/PasswordInput";
import { AuthLayout, textLink } from "../layouts/AuthLayout";
import { fieldError, formError } from "../lib/errors";
import { MIN_PASSWORD_LENGTH } from "../lib/password";
import { asApiError } from "../lib/useAsync";

const FIELDS = ["accountName", "name", "email", "password"];

/** Open sign-up (a hosted installation): a new account on the 7-day trial. */
export default function SignUpPage() {
  const { session, signedIn } = useAuth();
  const navigate = useNavigate();
  const [form, setForm] = useState({ accountName: "", name: "", email: "", password: "" });
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  const set = (key: keyof typeof form) => (event: { target: { value: string } }) =>
    setForm((current) => ({ ...current, [key]: event.target.value }));

  async function submit(event: FormEvent) {
    event.preventDefault();
    setPending(true);
    setError(null);
    try {
      const user = await authApi.signUp({
        accountName: form.accountName.trim(),
        name: form.name.trim(),
        email: form.email.trim(),
        password: form.password,
      });
      signedIn(user);
      navigate("/dashboard", { replace: true });
    } catch (caught) {
      setError(asApiError(caught));
    } finally {
      setPending(false);
    }
  }

  const footer = (
    <>
      Have an account?{" "}
      <Link to="/sign-in" className={textLink}>
        Sign in
      </Link>
    </>
  );

  if (!session?.signupOpen) {
    return (
      <AuthLayout title="Create your account" footer={footer}>
        <Alert tone="info" title="Sign-up is by invitation">
          This server does not take new sign-ups. Ask an owner or admin of your team to invite you; the invitation email
          has a link to join.
        </Alert>
      </AuthLayout>
    );
  }

  const topError = formError(error, FIELDS);
  return (
    <AuthLayout
      title="Create your account"
      subtitle="Start a 7-day free trial with every feature. No credit card required."
      footer={footer}
    >
      <form onSubmit={submit} noValidate className="space-y-5">
        {topError ? <Alert tone="error">{topError}</Alert> : null}
        <Input
          label="Account name"
          hint="Your company or project."
          autoComplete="organization"
          required
          value={form.accountName}
          onChange={set("accountName")}
          error={fieldError(error, "accountName")}
          autoFocus
        />
        <Input label="Your name" autoComplete="name" required value={form.name} onChange={set("name")} error={fieldError(error, "name")} />
        <Input
          label="Work email"
          type="email"
          autoComplete="email"
          inputMode="email"
          required
          value={form.email}
          onChange={set("email")}
          error={fieldError(error, "email")}
        />
        <PasswordInput
          label="Password"
          autoComplete="new-password"
          required
          minLength={MIN_PASSWORD_LENGTH}
          showStrength
          value={form.password}
          onChange={set("password")}
          error={fieldError(error, "password")}
        />
        <Button
          type="submit"
          className="w-full"
          loading={pending}
          disabled={!form.accountName.trim() || !form.name.trim() || !form.email.trim() || form.password.length < MIN_PASSWORD_LENGTH}
        >
          Start free trial
        </Button>
      </form>
    </AuthLayout>
  );
}
