import { useState, type FormEvent } from "react";
import { Link, useSearchParams } from "react-router";
import { authApi } from "../api/auth";
import type { ApiError } from "../api/client";
import { useAuth } from "../auth/AuthContext";
import { Alert } from "../components/Alert";
import { Button, ButtonLink } from "../components/Button";
import { PasswordInput } from "../components/PasswordInput";
import { AuthLayout, textLink } from "../layouts/AuthLayout";
import { fieldError, formError } from "../lib/errors";
import { MIN_PASSWORD_LENGTH } from "../lib/password";
import { asApiError } from "../lib/useAsync";

export default function ResetPasswordPage() {
  const [params] = useSearchParams();
  const token = params.get("token") ?? "";
  const { refresh } = useAuth();
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const [done, setDone] = useState(false);
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  const mismatch = confirm.length > 0 && confirm !== password;

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (mismatch) return;
    setPending(true);
    setError(null);
    try {
      await authApi.confirmPasswordReset(token, password);
      setDone(true);
      // Every session of the user ended, this browser's too.
      await refresh();
    } catch (caught) {
      setError(asApiError(caught));
    } finally {
      setPending(false);
    }
  }

  const tokenError = fieldError(error, "token");
  const topError = formError(error, ["password"]);

  return (
    <AuthLayout
      title="Choose a new password"
      subtitle={done ? undefined : "Signing in with the new password ends every other session."}
      footer={
        <Link to="/sign-in" className={textLink}>
          Back to sign in
        </Link>
      }
    >
      {!token ? (
        <Alert tone="error" title="This link is incomplete">
          Open the whole link from the password reset email, or{" "}
          <Link to="/forgot-password" className="font-medium underline">
            ask for a new one
          </Link>
          .
        </Alert>
      ) : done ? (
        <div className="space-y-4">
          <Alert tone="success" title="Your password is changed">
            Every session signed in with the old password has ended. Sign in with the new one.
          </Alert>
          <ButtonLink to="/sign-in" className="w-full">
            Sign in
          </ButtonLink>
        </div>
      ) : (
        <form onSubmit={submit} noValidate className="space-y-5">
          {topError ? (
            <Alert tone="error">
              {topError}
              {tokenError ? (
                <>
                  {" "}
                  <Link to="/forgot-password" className="font-medium underline">
                    Ask for a new link
                  </Link>
                  .
                </>
              ) : null}
            </Alert>
          ) : null}
          <PasswordInput
            label="New password"
            autoComplete="new-password"
            required
            minLength={MIN_PASSWORD_LENGTH}
            showStrength
            value={password}
            onChange={(event) => setPassword(event.target.value)}
            error={fieldError(error, "password")}
            autoFocus
          />
          <PasswordInput
            label="Repeat the new password"
            autoComplete="new-password"
            required
            value={confirm}
            onChange={(event) => setConfirm(event.target.value)}
            error={mismatch ? "The two passwords are not the same." : null}
          announceError={false}
          />
          <Button
            type="submit"
            className="w-full"
            loading={pending}
            disabled={password.length < MIN_PASSWORD_LENGTH || confirm !== password}
          >
            Change password
          </Button>
        </form>
      )}
    </AuthLayout>
  );
}
