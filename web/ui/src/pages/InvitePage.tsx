import { useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { authApi } from "../api/auth";
import type { ApiError } from "../api/client";
import { useAuth } from "../auth/AuthContext";
import { Alert } from "../components/Alert";
import { Button } from "../components/Button";
import { Input } from "../components/Field";
import { PasswordInput } from "../components/PasswordInput";
import { Spinner } from "../components/Spinner";
import { AuthLayout, textLink } from "../layouts/AuthLayout";
import { fieldError, formError } from "../lib/errors";
import { formatDateTime } from "../lib/format";
import { MIN_PASSWORD_LENGTH } from "../lib/password";
import { asApiError, useAsync } from "../lib/useAsync";

const ROLE_WORDS = { owner: "an owner", admin: "an admin", member: "a member" } as const;

/** /invite/:token: see who invited you to which account, then choose a name and a password. */
export default function InvitePage() {
  const { token = "" } = useParams();
  const { user, signedIn } = useAuth();
  const navigate = useNavigate();
  const invitation = useAsync(() => authApi.invitation(token), [token]);
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setPending(true);
    setError(null);
    try {
      const me = await authApi.acceptInvitation(token, { name: name.trim(), password });
      signedIn(me);
      navigate("/dashboard", { replace: true });
    } catch (caught) {
      setError(asApiError(caught));
    } finally {
      setPending(false);
    }
  }

  const details = invitation.data;
  const topError = formError(error, ["name", "password"]);

  return (
    <AuthLayout
      title="Join your team"
      subtitle={
        details ? (
          <>
            <span className="font-medium text-zinc-900 dark:text-zinc-100">{details.invitedBy}</span> invited you to{" "}
            <span className="font-medium text-zinc-900 dark:text-zinc-100">{details.accountName}</span> on Mailmark as{" "}
            {ROLE_WORDS[details.role] ?? details.role}.
          </>
        ) : undefined
      }
      footer={
        <>
          Have an account already?{" "}
          <Link to="/sign-in" className={textLink}>
            Sign in
          </Link>
        </>
      }
    >
      {invitation.loading && !details ? (
        <div className="flex justify-center py-6 text-zinc-500">
          <Spinner className="size-6" label="Loading the invitation" />
        </div>
      ) : invitation.error ? (
        <Alert tone="error" title="This invitation cannot be used">
          {invitation.error.status === 404
            ? "The link is wrong, was used already, or has expired. Ask whoever invited you to send a new invitation."
            : invitation.error.message}
        </Alert>
      ) : details ? (
        <form onSubmit={submit} noValidate className="space-y-5">
          {user ? (
            <Alert tone="warning">
              You are signed in as {user.email}. Accepting signs you in as {details.email} instead.
            </Alert>
          ) : null}
          {topError ? <Alert tone="error">{topError}</Alert> : null}
          <div className="rounded-lg bg-zinc-50 px-3 py-2.5 text-sm ring-1 ring-zinc-200 ring-inset dark:bg-zinc-800/50 dark:ring-zinc-700">
            <p className="text-zinc-600 dark:text-zinc-400">You will sign in as</p>
            <p className="font-medium break-all text-zinc-900 dark:text-white">{details.email}</p>
            <p className="mt-1 text-xs text-zinc-600 dark:text-zinc-400">The invitation expires {formatDateTime(details.expiresAt)}.</p>
          </div>
          {/* Lets a password manager save the new password under the right address. */}
          <input type="email" name="username" autoComplete="username" value={details.email} readOnly hidden />
          <Input
            label="Your name"
            autoComplete="name"
            required
            value={name}
            onChange={(event) => setName(event.target.value)}
            error={fieldError(error, "name")}
            autoFocus
          />
          <PasswordInput
            label="Password"
            autoComplete="new-password"
            required
            minLength={MIN_PASSWORD_LENGTH}
            showStrength
            value={password}
            onChange={(event) => setPassword(event.target.value)}
            error={fieldError(error, "password")}
          />
          <Button type="submit" className="w-full" loading={pending} disabled={!name.trim() || password.length < MIN_PASSWORD_LENGTH}>
            Join {details.accountName}
          </Button>
        </form>
      ) : null}
    </AuthLayout>
  );
}
