import { useEffect, useRef, useState, type FormEvent } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { authApi, isTotpChallenge, type Me } from "../api/auth";
import type { ApiError } from "../api/client";
import { useAuth } from "../auth/AuthContext";
import { safeNext } from "../auth/redirects";
import { Alert } from "../components/Alert";
import { Button } from "../components/Button";
import { Input } from "../components/Field";
import { PasswordInput } from "../components/PasswordInput";
import { AuthLayout, textLink } from "../layouts/AuthLayout";
import { fieldError, formError } from "../lib/errors";
import { plural } from "../lib/format";
import { asApiError } from "../lib/useAsync";
import { useCountdown } from "../lib/useCountdown";

/** Words for the `error` an OpenID Connect callback sends back here. */
const OIDC_ERRORS: Record<string, string> = {
  access_denied: "Sign-in with your provider was cancelled.",
  no_account: "No Mailmark user has that email address. Ask an owner or admin of your team for an invitation.",
  invalid_state: "That sign-in link expired. Try again.",
};

function oidcMessage(error: string): string {
  if (OIDC_ERRORS[error]) return OIDC_ERRORS[error];
  // A sentence from the server is shown as it is; a bare code gets a general one.
  return /\s/.test(error) ? error : "Sign-in with your provider did not work. Try again, or use your password.";
}

export default function SignInPage() {
  const { session, signedIn } = useAuth();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const [step, setStep] = useState<"password" | "code">("password");
  const [expired, setExpired] = useState(false);

  function finish(user: Me) {
    signedIn(user);
    navigate(safeNext(params.get("next")), { replace: true });
  }

  const oidcError = params.get("error");
  const providers = session?.oidcProviders ?? [];

  return (
    <AuthLayout
      title="Sign in"
      subtitle={
        step === "password"
          ? "Sign in to your Mailmark account."
          : "Two-factor authentication is on for this account."
      }
      footer={
        session?.signupOpen && step === "password" ? (
          <>
            New to Mailmark?{" "}
            <Link to="/sign-up" className={textLink}>
              Create an account
            </Link>
          </>
        ) : null
      }
    >
      {step === "password" ? (
        <div className="space-y-5">
          {session?.setupRequired ? (
            <Alert tone="info" title="This server has no owner yet">
              Open the setup link that <code className="font-mono">mailmark serve</code> printed when it started, or
              print a new one with <code className="font-mono">mailmark setup-link</code>.
            </Alert>
          ) : null}
          {expired ? (
            <Alert tone="warning">Your sign-in took too long. Enter your password again.</Alert>
          ) : null}
          {oidcError ? <Alert tone="error">{oidcMessage(oidcError)}</Alert> : null}
          {providers.length > 0 ? (
            <>
              <div className="space-y-2">
                {providers.map((provider) => (
                  <a
                    key={provider.id}
                    href={authApi.oidcStartUrl(provider.id)}
                    className="flex h-10 w-full items-center justify-center rounded-lg bg-white text-sm font-medium text-zinc-900 shadow-sm ring-1 ring-zinc-300 ring-inset hover:bg-zinc-50 dark:bg-zinc-800 dark:text-zinc-100 dark:ring-zinc-700 dark:hover:bg-zinc-700"
                  >
                    Continue with {provider.name}
                  </a>
                ))}
              </div>
              <div className="flex items-center gap-3 text-xs text-zinc-500 dark:text-zinc-400">
                <span className="h-px flex-1 bg-zinc-200 dark:bg-zinc-700" />
                or with your email
                <span className="h-px flex-1 bg-zinc-200 dark:bg-zinc-700" />
              </div>
            </>
          ) : null}
          <PasswordStep
            onSignedIn={finish}
            onTotp={() => {
              setExpired(false);
              setStep("code");
            }}
          />
        </div>
      ) : (
        <CodeStep
          onSignedIn={finish}
          onExpired={() => {
            setExpired(true);
            setStep("password");
          }}
        />
      )}
    </AuthLayout>
  );
}

function PasswordStep({ onSignedIn, onTotp }: { onSignedIn: (user: Me) => void; onTotp: () => void }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [missing, setMissing] = useState<{ email?: string; password?: string }>({});
  const [retryUntil, setRetryUntil] = useState<number | null>(null);
  const waiting = useCountdown(retryUntil);
  const emailRef = useRef<HTMLInputElement>(null);
  const passwordRef = useRef<HTMLInputElement>(null);

  async function submit(event: FormEvent) {
    event.preventDefault();
    const empty = {
      email: email.trim() ? undefined : "Enter your email address.",
      password: password ? undefined : "Enter your password.",
    };
    setMissing(empty);
    if (empty.email || empty.password) {
      (empty.email ? emailRef : passwordRef).current?.focus();
      return;
    }
    setPending(true);
    setError(null);
    try {
      const result = await authApi.signIn({ email: email.trim(), password });
      if (isTotpChallenge(result)) onTotp();
      else onSignedIn(result);
    } catch (caught) {
      const problem = asApiError(caught);
      setError(problem);
      setRetryUntil(problem.status === 429 && problem.retryAfter ? Date.now() + problem.retryAfter * 1000 : null);
      if (problem.code === "invalid_credentials") {
        setPassword("");
        passwordRef.current?.focus();
      }
    } finally {
      setPending(false);
    }
  }

  const topError = formError(error, ["email", "password"]);

  return (
    <form onSubmit={submit} noValidate className="space-y-5">
      {topError ? <Alert tone="error">{topError}</Alert> : null}
      <Input
        ref={emailRef}
        label="Email"
        type="email"
        name="email"
        autoComplete="username"
        inputMode="email"
        required
        value={email}
        onChange={(event) => setEmail(event.target.value)}
        error={missing.email ?? fieldError(error, "email")}
        autoFocus
      />
      <PasswordInput
        ref={passwordRef}
        label="Password"
        name="password"
        autoComplete="current-password"
        required
        value={password}
        onChange={(event) => setPassword(event.target.value)}
        error={missing.password ?? fieldError(error, "password")}
        labelAside={
          <Link to="/forgot-password" className={`text-sm ${textLink}`}>
            Forgot password?
          </Link>
        }
      />
      <div>
        <Button type="submit" className="w-full" loading={pending}>
          Sign in
        </Button>
        {error?.status === 429 && waiting > 0 ? (
          <p className="mt-2 text-center text-sm text-zinc-600 tabular-nums dark:text-zinc-400">
            Sign-in opens again in {plural(waiting, "second")}.
          </p>
        ) : null}
      </div>
    </form>
  );
}

function CodeStep({ onSignedIn, onExpired }: { onSignedIn: (user: Me) => void; onExpired: () => void }) {
  const [recovery, setRecovery] = useState(false);
  const [code, setCode] = useState("");
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const input = useRef<HTMLInputElement>(null);

  useEffect(() => {
    input.current?.focus();
  }, [recovery]);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setPending(true);
    setError(null);
    try {
      onSignedIn(await authApi.totp(code.trim()));
    } catch (caught) {
      const problem = asApiError(caught);
      if (problem.code === "unauthenticated") {
        onExpired();
        return;
      }
      setError(problem);
      setCode("");
    } finally {
      setPending(false);
    }
  }

  const topError = formError(error, ["code"]);
  return (
    <form onSubmit={submit} noValidate className="space-y-5">
      <p className="text-sm text-zinc-600 dark:text-zinc-400">
        {recovery
          ? "Enter one of the recovery codes you saved when you turned on two-factor authentication. Each code works once."
          : "Open your authenticator app and enter the 6-digit code it shows for Mailmark."}
      </p>
      {topError ? <Alert tone="error">{topError}</Alert> : null}
      <Input
        ref={input}
        key={recovery ? "recovery" : "totp"}
        label={recovery ? "Recovery code" : "Authentication code"}
        name="code"
        autoComplete="one-time-code"
        inputMode={recovery ? "text" : "numeric"}
        pattern={recovery ? undefined : "[0-9]*"}
        maxLength={recovery ? 32 : 6}
        placeholder={recovery ? "xxxxx-xxxxx" : "123456"}
        inputClassName={recovery ? "font-mono" : "font-mono tracking-[0.4em]"}
        required
        value={code}
        onChange={(event) => setCode(recovery ? event.target.value : event.target.value.replace(/\D/g, ""))}
        error={fieldError(error, "code")}
      />
      <Button type="submit" className="w-full" loading={pending} disabled={recovery ? code.trim().length < 6 : code.length !== 6}>
        Verify
      </Button>
      <button
        type="button"
        className={`block w-full text-center text-sm ${textLink}`}
        onClick={() => {
          setRecovery((value) => !value);
          setCode("");
          setError(null);
        }}
      >
        {recovery ? "Use your authenticator app instead" : "Use a recovery code"}
      </button>
    </form>
  );
}
