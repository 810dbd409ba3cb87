import { mailboxesApi, type ConnectionEndpoint } from "../../../api/mailboxes";
import { Alert } from "../../../components/Alert";
import { buttonClasses } from "../../../components/Button";
import { Card } from "../../../components/Card";
import { CopyButton } from "../../../components/CopyButton";
import { Spinner } from "../../../components/Spinner";
import { useAsync } from "../../../lib/useAsync";

function endpoint(server: ConnectionEndpoint): string {
  return `${server.port} with ${server.security}`;
}

/** One direction (incoming or outgoing): the server, and its two ports, implicit TLS first. */
function ServerSettings({
  title,
  preferred,
  fallback,
}: {
  title: string;
  preferred: ConnectionEndpoint;
  fallback: ConnectionEndpoint;
}) {
  return (
    <section aria-label={title} className="rounded-lg p-4 ring-1 ring-zinc-200 dark:ring-zinc-800">
      <h3 className="text-sm font-semibold text-zinc-900 dark:text-white">{title}</h3>
      <dl className="mt-3 space-y-2 text-sm">
        <div>
          <dt className="text-zinc-600 dark:text-zinc-400">Server</dt>
          <dd className="mt-0.5 flex items-center gap-1">
            <code className="min-w-0 font-mono text-[13px] break-all text-zinc-900 dark:text-white">{preferred.host}</code>
            <CopyButton
              variant="ghost"
              value={preferred.host}
              label={`Copy the ${title.toLowerCase()} server`}
              className="-my-1 w-8 shrink-0 px-0! [&>span:last-child]:sr-only"
            />
          </dd>
        </div>
        <div>
          <dt className="text-zinc-600 dark:text-zinc-400">Port and security</dt>
          <dd className="mt-0.5 text-zinc-900 dark:text-zinc-100">
            {endpoint(preferred)} <span className="text-zinc-600 dark:text-zinc-400">(preferred)</span>
            {fallback.host !== preferred.host ? (
              <>, or {fallback.host} port {endpoint(fallback)}</>
            ) : (
              <>, or {endpoint(fallback)}</>
            )}
          </dd>
        </div>
      </dl>
    </section>
  );
}

/** What to type into a desktop or phone mail app, and the files that configure one by themselves. */
export function ConnectionCard({ address }: { address: string }) {
  const connection = useAsync(() => mailboxesApi.connection(address), [address]);
  const settings = connection.data;

  return (
    <Card
      title="Mail app settings"
      description="For Apple Mail, Thunderbird, Outlook or a phone: most apps find these by themselves from the address."
    >
      {connection.error ? (
        <Alert tone="error">{connection.error.message}</Alert>
      ) : !settings ? (
        <div className="flex justify-center py-6 text-zinc-500">
          <Spinner label="Loading the settings" />
        </div>
      ) : (
        <div className="space-y-5">
          <dl className="grid gap-3 text-sm sm:grid-cols-2">
            <div>
              <dt className="text-zinc-600 dark:text-zinc-400">Username</dt>
              <dd className="mt-1 flex items-center gap-2">
                <code className="min-w-0 font-mono text-[13px] break-all text-zinc-900 dark:text-white">{settings.username}</code>
                <CopyButton
                  variant="ghost"
                  value={settings.username}
                  label="Copy username"
                  className="-my-1 w-8 shrink-0 px-0! [&>span:last-child]:sr-only"
                />
              </dd>
            </div>
            <div>
              <dt className="text-zinc-600 dark:text-zinc-400">Password</dt>
              <dd className="mt-1 text-zinc-900 dark:text-zinc-100">The mailbox password set above</dd>
            </div>
          </dl>

          <div className="grid gap-3 sm:grid-cols-2">
            <ServerSettings title="Incoming mail (IMAP)" preferred={settings.imaps} fallback={settings.imap} />
            <ServerSettings title="Outgoing mail (SMTP)" preferred={settings.submissions} fallback={settings.submission} />
          </div>

          <div className="space-y-2">
            <div className="flex flex-wrap gap-2">
              <a href={settings.mobileconfigUrl} download className={buttonClasses("secondary")}>
                Download Apple profile
              </a>
              <a href={settings.autoconfigUrl} target="_blank" rel="noopener noreferrer" className={buttonClasses("ghost")}>
                Thunderbird autoconfig (XML)
              </a>
            </div>
            <p className="text-sm text-zinc-600 dark:text-zinc-400">
              On a Mac, iPhone or iPad, open the downloaded profile (.mobileconfig) to add the account; Thunderbird
              reads the autoconfig document by itself.
            </p>
          </div>
        </div>
      )}
    </Card>
  );
}
