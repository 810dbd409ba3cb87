import { useState, type FormEvent } from "react";
import { useNavigate, useSearchParams } from "react-router";
import { authApi } from "../api/auth";
import type { ApiError } from "../api/client";
import { useAuth } from "../auth/AuthContext";
import { Alert } from "../components/Alert";
import { Button } from "../components/Button";
import { Input } from "../components/Field";
import { PasswordInput } from "../components/PasswordInput";
import { AuthLayout } from "../layouts/AuthLayout";
import { fieldError, formError } from "../lib/errors";
import { MIN_PASSWORD_LENGTH } from "../lib/password";
import { asApiError } from "../lib/useAsync";

const FIELDS = ["accountName", "name", "email", "password"];

/** First run: the setup link's page creates the owner and the account, and signs in. */
export default function SetupPage() {
  const [params] = useSearchParams();
  const token = params.get("token") ?? "";
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
      const user = await authApi.setup({
        token,
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

  const noOwnerNeeded = session && !session.setupRequired;
  const topError = formError(error, FIELDS);

  return (
    <AuthLayout
      title="Set up Mailmark"
      subtitle="Create the owner of this server: the first user, who can invite everyone else."
    >
      {!token ? (
        <Alert tone="error" title="This link has no setup token">
          Open the full setup link that <code className="font-mono">mailmark serve</code> printed, or print a new one
          with <code className="font-mono">mailmark setup-link</code>.
        </Alert>
      ) : noOwnerNeeded ? (
        <Alert tone="error" title="This setup link cannot be used">
          This server has an owner already, so the link does nothing now.{" "}
          <a href="/sign-in" className="font-medium underline">
            Sign in
          </a>{" "}
          instead.
        </Alert>
      ) : (
        <form onSubmit={submit} noValidate className="space-y-5">
          {topError ? <Alert tone="error">{topError}</Alert> : null}
          <Input
            label="Account name"
            hint="Your company or project; you can change it later."
            autoComplete="organization"
            required
            value={form.accountName}
            onChange={set("accountName")}
            error={fieldError(error, "accountName")}
            autoFocus
          />
          <Input
            label="Your name"
            autoComplete="name"
            required
            value={form.name}
            onChange={set("name")}
            error={fieldError(error, "name")}
          />
          <Input
            label="Email"
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
            Create owner account
          </Button>
        </form>
      )}
    </AuthLayout>
  );
}
