import { useState, type FormEvent } from "react";
import { Link } from "react-router";
import { authApi } from "../api/auth";
import type { ApiError } from "../api/client";
import { Alert } from "../components/Alert";
import { Button } from "../components/Button";
import { Input } from "../components/Field";
import { AuthLayout, textLink } from "../layouts/AuthLayout";
import { fieldError, formError } from "../lib/errors";
import { asApiError } from "../lib/useAsync";

export default function ForgotPasswordPage() {
  const [email, setEmail] = useState("");
  const [sentTo, setSentTo] = useState<string | null>(null);
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setPending(true);
    setError(null);
    try {
      await authApi.requestPasswordReset(email.trim());
      setSentTo(email.trim());
    } catch (caught) {
      setError(asApiError(caught));
    } finally {
      setPending(false);
    }
  }

  const footer = (
    <Link to="/sign-in" className={textLink}>
      Back to sign in
    </Link>
  );

  return (
    <AuthLayout
      title="Reset your password"
      subtitle={sentTo ? undefined : "Enter your email and we will send you a link to choose a new password."}
      footer={footer}
    >
      {sentTo ? (
        <div className="space-y-4">
          <Alert tone="success" title="Check your email">
            If <span className="font-medium">{sentTo}</span> belongs to a Mailmark user, a link to reset the password is
            on its way. The link works once, for one hour.
          </Alert>
          <Button variant="secondary" className="w-full" onClick={() => setSentTo(null)}>
            Use a different email
          </Button>
        </div>
      ) : (
        <form onSubmit={submit} noValidate className="space-y-5">
          {formError(error, ["email"]) ? <Alert tone="error">{formError(error, ["email"])}</Alert> : null}
          <Input
            label="Email"
            type="email"
            autoComplete="email"
            inputMode="email"
            required
            value={email}
            onChange={(event) => setEmail(event.target.value)}
            error={fieldError(error, "email")}
            autoFocus
          />
          <Button type="submit" className="w-full" loading={pending} disabled={!email.trim()}>
            Send reset link
          </Button>
        </form>
      )}
    </AuthLayout>
  );
}
