import { useEffect, useState, type FormEvent } from "react";
import { authApi, type DeviceSession, type TotpSetup } from "../api/auth";
import type { ApiError } from "../api/client";
import { useAuth, useUser } from "../auth/AuthContext";
import { Alert } from "../components/Alert";
import { Button } from "../components/Button";
import { Badge, Card, PageHeader } from "../components/Card";
import { CopyButton } from "../components/CopyButton";
import { Dialog } from "../components/Dialog";
import { Input } from "../components/Field";
import { PasswordInput } from "../components/PasswordInput";
import { SettingsTabs } from "../components/SettingsTabs";
import { Spinner } from "../components/Spinner";
import { Table, type Column } from "../components/Table";
import { useToast } from "../components/Toast";
import { fieldError, formError } from "../lib/errors";
import { formatDateTime, relativeTime } from "../lib/format";
import { MIN_PASSWORD_LENGTH } from "../lib/password";
import { asApiError, useAsync, type AsyncState } from "../lib/useAsync";
import { svgDataUrl } from "../lib/svg";
import { describeUserAgent } from "../lib/userAgent";

export default function SecurityPage() {
  const sessions = useAsync(() => authApi.sessions(), []);
  return (
    <>
      <PageHeader title="Security" description="Your name, password, two-factor authentication and where you are signed in." />
      <SettingsTabs />
      <div className="space-y-6">
        <ProfileCard />
        <PasswordCard onChanged={() => void sessions.reload()} />
        <TwoFactorCard />
        <SessionsCard state={sessions} />
      </div>
    </>
  );
}

function ProfileCard() {
  const user = useUser();
  const { updateUser } = useAuth();
  const toast = useToast();
  const [name, setName] = useState(user.name);
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setPending(true);
    setError(null);
    try {
      const me = await authApi.updateMe({ name: name.trim() });
      updateUser({ name: me.name });
      toast.success("Your name is saved.");
    } catch (caught) {
      setError(asApiError(caught));
    } finally {
      setPending(false);
    }
  }

  return (
    <Card title="Your profile" description="How teammates see you in Mailmark.">
      <form onSubmit={submit} noValidate className="grid max-w-xl gap-5 sm:grid-cols-2">
        {formError(error, ["name"]) ? <Alert tone="error" className="sm:col-span-2">{formError(error, ["name"])}</Alert> : null}
        <Input label="Name" autoComplete="name" value={name} onChange={(event) => setName(event.target.value)} error={fieldError(error, "name")} />
        <Input label="Email" type="email" value={user.email} readOnly disabled hint="Your sign-in address." />
        <div className="sm:col-span-2">
          <Button type="submit" variant="secondary" loading={pending} disabled={!name.trim() || name.trim() === user.name}>
            Save name
          </Button>
        </div>
      </form>
    </Card>
  );
}

function PasswordCard({ onChanged }: { onChanged: () => void }) {
  const toast = useToast();
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [repeat, setRepeat] = useState("");
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const mismatch = repeat.length > 0 && repeat !== next;

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (mismatch) return;
    setPending(true);
    setError(null);
    try {
      await authApi.changePassword({ currentPassword: current, newPassword: next });
      setCurrent("");
      setNext("");
      setRepeat("");
      toast.success("Password changed. Your other sessions were signed out.");
      onChanged();
    } catch (caught) {
      setError(asApiError(caught));
    } finally {
      setPending(false);
    }
  }

  const topError = formError(error, ["currentPassword", "newPassword"]);
  return (
    <Card title="Password" description="Changing it signs you out everywhere else.">
      <form onSubmit={submit} noValidate className="max-w-md space-y-5">
        {topError ? <Alert tone="error">{topError}</Alert> : null}
        <PasswordInput
          label="Current password"
          autoComplete="current-password"
          value={current}
          onChange={(event) => setCurrent(event.target.value)}
          error={fieldError(error, "currentPassword")}
        />
        <PasswordInput
          label="New password"
          autoComplete="new-password"
          showStrength
          value={next}
          onChange={(event) => setNext(event.target.value)}
          error={fieldError(error, "newPassword")}
        />
        <PasswordInput
          label="Repeat the new password"
          autoComplete="new-password"
          value={repeat}
          onChange={(event) => setRepeat(event.target.value)}
          error={mismatch ? "The two passwords are not the same." : null}
          announceError={false}
        />
        <Button type="submit" loading={pending} disabled={!current || next.length < MIN_PASSWORD_LENGTH || next !== repeat}>
          Change password
        </Button>
      </form>
    </Card>
  );
}

/** "GXKF 266R 4WJ7 …": a setup key is typed by hand, four letters at a time. */
function groupsOfFour(secret: string): string {
  return secret.replace(/\s+/g, "").replace(/(.{4})(?=.)/g, "$1 ");
}

function TwoFactorCard() {
  const user = useUser();
  const { updateUser } = useAuth();
  const toast = useToast();
  const [setup, setSetup] = useState<TotpSetup | null>(null);
  const [codes, setCodes] = useState<string[] | null>(null);
  const [starting, setStarting] = useState(false);
  const [startError, setStartError] = useState<string | null>(null);
  const [disableOpen, setDisableOpen] = useState(false);

  async function start() {
    setStarting(true);
    setStartError(null);
    try {
      setSetup(await authApi.totpSetup());
    } catch (caught) {
      setStartError(asApiError(caught).message);
    } finally {
      setStarting(false);
    }
  }

  const status = user.totpEnabled ? <Badge tone="success">On</Badge> : <Badge tone="neutral">Off</Badge>;

  return (
    <Card
      title={
        <span className="inline-flex items-center gap-2">
          Two-factor authentication {status}
        </span>
      }
      description="After your password, sign-in asks for a code from an authenticator app (1Password, Google Authenticator, Aegis…)."
    >
      {codes ? (
        <RecoveryCodes codes={codes} onDone={() => setCodes(null)} />
      ) : setup ? (
        <EnableTotp
          setup={setup}
          onCancel={() => setSetup(null)}
          onEnabled={(recoveryCodes) => {
            setSetup(null);
            setCodes(recoveryCodes);
            updateUser({ totpEnabled: true });
            toast.success("Two-factor authentication is on.");
          }}
        />
      ) : user.totpEnabled ? (
        <div className="flex flex-wrap items-center justify-between gap-3">
          <p className="text-sm text-zinc-700 dark:text-zinc-300">
            Signing in asks for a code from your app. Lost the phone? Use one of your recovery codes.
          </p>
          <Button variant="secondary" onClick={() => setDisableOpen(true)}>
            Turn off
          </Button>
        </div>
      ) : (
        <div className="space-y-3">
          {startError ? <Alert tone="error">{startError}</Alert> : null}
          <Button onClick={() => void start()} loading={starting}>
            Set up two-factor authentication
          </Button>
        </div>
      )}
      <DisableTotpDialog
        open={disableOpen}
        onClose={() => setDisableOpen(false)}
        onDisabled={() => {
          updateUser({ totpEnabled: false });
          toast.success("Two-factor authentication is off.");
        }}
      />
    </Card>
  );
}

function EnableTotp({
  setup,
  onCancel,
  onEnabled,
}: {
  setup: TotpSetup;
  onCancel: () => void;
  onEnabled: (codes: string[]) => void;
}) {
  const [code, setCode] = useState("");
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setPending(true);
    setError(null);
    try {
      const { recoveryCodes } = await authApi.totpEnable(code);
      onEnabled(recoveryCodes);
    } catch (caught) {
      setError(asApiError(caught));
      setCode("");
    } finally {
      setPending(false);
    }
  }

  return (
    <div className="grid gap-6 md:grid-cols-[auto_1fr]">
      <div className="flex flex-col items-center gap-2">
        <img
          src={svgDataUrl(setup.qrSvg)}
          alt="QR code to add Mailmark to your authenticator app"
          width={192}
          height={192}
          className="size-48 rounded-lg bg-white p-2 ring-1 ring-zinc-200"
        />
      </div>
      <form onSubmit={submit} noValidate className="max-w-md space-y-5">
        <ol className="list-decimal space-y-1 pl-5 text-sm text-zinc-700 dark:text-zinc-300">
          <li>Scan the QR code with your authenticator app.</li>
          <li>Enter the 6-digit code the app shows.</li>
        </ol>
        <div>
          <p className="text-sm text-zinc-600 dark:text-zinc-400">Cannot scan? Enter this key in the app:</p>
          <div className="mt-1 flex flex-wrap items-center gap-2">
            <code className="rounded bg-zinc-100 px-2 py-1 font-mono text-sm dark:bg-zinc-800">{groupsOfFour(setup.secret)}</code>
            <CopyButton value={setup.secret} label="Copy the setup key" />
          </div>
        </div>
        {formError(error, ["code"]) ? <Alert tone="error">{formError(error, ["code"])}</Alert> : null}
        <Input
          label="Authentication code"
          autoComplete="one-time-code"
          inputMode="numeric"
          pattern="[0-9]*"
          maxLength={6}
          placeholder="123456"
          inputClassName="font-mono tracking-[0.4em]"
          value={code}
          onChange={(event) => setCode(event.target.value.replace(/\D/g, ""))}
          error={fieldError(error, "code")}
        />
        <div className="flex flex-wrap gap-2">
          <Button type="submit" loading={pending} disabled={code.length !== 6}>
            Turn on
          </Button>
          <Button variant="secondary" onClick={onCancel} disabled={pending}>
            Cancel
          </Button>
        </div>
      </form>
    </div>
  );
}

function RecoveryCodes({ codes, onDone }: { codes: string[]; onDone: () => void }) {
  const [href, setHref] = useState<string | null>(null);
  const text = `Mailmark recovery codes\nEach code signs you in once when you cannot use your authenticator app.\n\n${codes.join("\n")}\n`;

  useEffect(() => {
    const url = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
    setHref(url);
    return () => URL.revokeObjectURL(url);
  }, [text]);

  return (
    <div className="space-y-4">
      <Alert tone="warning" title="Save your recovery codes now">
        They are shown only this once. Each one signs you in once if you lose your authenticator app. Keep them somewhere
        safe, like a password manager.
      </Alert>
      <ul aria-label="Recovery codes" className="grid grid-cols-1 gap-2 rounded-lg bg-zinc-50 p-4 font-mono text-sm min-[400px]:grid-cols-2 dark:bg-zinc-800/60">
        {codes.map((code) => (
          <li key={code} className="tracking-wide">
            {code}
          </li>
        ))}
      </ul>
      <div className="flex flex-wrap gap-2">
        <CopyButton value={codes.join("\n")} text="Copy codes" label="Copy codes" size="md" />
        {href ? (
          <a
            href={href}
            download="mailmark-recovery-codes.txt"
            className="inline-flex h-10 items-center justify-center gap-2 rounded-lg bg-white px-4 text-sm font-medium text-zinc-900 shadow-sm ring-1 ring-zinc-300 ring-inset hover:bg-zinc-50 dark:bg-zinc-800 dark:text-zinc-100 dark:ring-zinc-700 dark:hover:bg-zinc-700"
          >
            Download
          </a>
        ) : null}
        <Button onClick={onDone}>I have saved them</Button>
      </div>
    </div>
  );
}

function DisableTotpDialog({ open, onClose, onDisabled }: { open: boolean; onClose: () => void; onDisabled: () => void }) {
  const [password, setPassword] = useState("");
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  function close() {
    setPassword("");
    setError(null);
    onClose();
  }

  async function submit(event: FormEvent) {
    event.preventDefault();
    setPending(true);
    setError(null);
    try {
      await authApi.totpDisable(password);
      onDisabled();
      close();
    } catch (caught) {
      setError(asApiError(caught));
    } finally {
      setPending(false);
    }
  }

  return (
    <Dialog
      open={open}
      onClose={close}
      title="Turn off two-factor authentication?"
      description="Signing in will ask only for your password, and your recovery codes stop working."
      busy={pending}
      size="sm"
      footer={
        <>
          <Button variant="secondary" onClick={close} disabled={pending}>
            Cancel
          </Button>
          <Button variant="danger" type="submit" form="disable-totp" loading={pending} disabled={!password}>
            Turn off
          </Button>
        </>
      }
    >
      <form id="disable-totp" onSubmit={submit} noValidate className="space-y-4">
        {formError(error, ["password"]) ? <Alert tone="error">{formError(error, ["password"])}</Alert> : null}
        <PasswordInput
          label="Your password"
          autoComplete="current-password"
          value={password}
          onChange={(event) => setPassword(event.target.value)}
          error={fieldError(error, "password")}
          data-autofocus
        />
      </form>
    </Dialog>
  );
}

function SessionsCard({ state }: { state: AsyncState<DeviceSession[]> }) {
  const toast = useToast();
  const [revoking, setRevoking] = useState<string | null>(null);

  async function revoke(session: DeviceSession) {
    setRevoking(String(session.id));
    try {
      await authApi.revokeSession(session.id);
      state.setData((current) => (current ?? []).filter((item) => item.id !== session.id));
      toast.success(`${describeUserAgent(session.userAgent)} is signed out.`);
    } catch (caught) {
      toast.error(asApiError(caught).message);
    } finally {
      setRevoking(null);
    }
  }

  const columns: Column<DeviceSession>[] = [
    {
      header: "Device",
      hideOnCard: true,
      cell: (session) => <DeviceName session={session} />,
    },
    { header: "IP address", cell: (session) => <span className="font-mono text-xs">{session.ip || "—"}</span> },
    { header: "Signed in", cell: (session) => formatDateTime(session.createdAt) },
    {
      header: "Last active",
      cell: (session) => <span title={formatDateTime(session.lastSeenAt)}>{session.current ? "Now" : relativeTime(session.lastSeenAt)}</span>,
    },
    {
      header: "Actions",
      srOnlyHeader: true,
      className: "text-right",
      cell: (session) =>
        session.current ? null : (
          <Button
            size="sm"
            variant="secondary"
            loading={revoking === String(session.id)}
            onClick={() => void revoke(session)}
            aria-label={`Revoke ${describeUserAgent(session.userAgent)}, last active ${relativeTime(session.lastSeenAt)}`}
          >
            Revoke
          </Button>
        ),
    },
  ];

  const sessions = state.data ? [...state.data].sort((a, b) => Number(b.current) - Number(a.current)) : [];
  return (
    <section aria-labelledby="sessions-heading" className="space-y-3">
      <div>
        <h2 id="sessions-heading" className="text-base font-semibold">
          Sessions
        </h2>
        <p className="mt-1 text-sm text-zinc-600 dark:text-zinc-400">
          Where you are signed in. Revoke a session you do not recognise, then change your password.
        </p>
      </div>
      {state.error && !state.data ? (
        <Alert tone="error">{state.error.message}</Alert>
      ) : !state.data ? (
        <div className="flex justify-center py-8 text-zinc-500">
          <Spinner className="size-6" label="Loading your sessions" />
        </div>
      ) : (
        <Table label="Sessions" columns={columns} rows={sessions} rowKey={(session) => String(session.id)} cardTitle={(session) => <DeviceName session={session} />} />
      )}
    </section>
  );
}

function DeviceName({ session }: { session: DeviceSession }) {
  return (
    <span className="inline-flex flex-wrap items-center gap-2">
      <span className="font-medium text-zinc-900 dark:text-white" title={session.userAgent ?? undefined}>
        {describeUserAgent(session.userAgent)}
      </span>
      {session.current ? <Badge tone="success">This device</Badge> : null}
    </span>
  );
}
