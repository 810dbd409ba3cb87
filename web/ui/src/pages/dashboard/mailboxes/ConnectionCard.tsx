import { mailboxesApi, type ConnectionEndpoint } from "../../../api/mailboxes";
import { Alert } from "../../../components/Alert";
import { buttonClasses } from "../../../components/Button";
import { Card } from "../../../components/Card";
import { CopyButton } from "../../../components/CopyButton";
import { Spinner } from "../../../components/Spinner";
import { useAsync } from "../../../lib/useAsync";

function EndpointRow({ kind, endpoint, preferred }: { kind: string; endpoint: ConnectionEndpoint; preferred: boolean }) {
  return (
    <tr className="align-top">
      <th scope="row" className="py-2 pr-4 text-left font-medium text-zinc-900 dark:text-zinc-100">
        {kind}
        {preferred ? <span className="block text-xs font-normal text-zinc-600 dark:text-zinc-400">Preferred</span> : null}
      </th>
      <td className="py-2 pr-4 font-mono text-[13px] break-all text-zinc-800 dark:text-zinc-200">{endpoint.host}</td>
      <td className="py-2 pr-4 font-mono text-[13px] text-zinc-800 dark:text-zinc-200">{endpoint.port}</td>
      <td className="py-2 text-zinc-800 dark:text-zinc-200">{endpoint.security}</td>
    </tr>
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
                <CopyButton variant="ghost" value={settings.username} label="Copy username" />
              </dd>
            </div>
            <div>
              <dt className="text-zinc-600 dark:text-zinc-400">Password</dt>
              <dd className="mt-1 text-zinc-900 dark:text-zinc-100">The mailbox password above</dd>
            </div>
          </dl>

          <div className="overflow-x-auto">
            <table className="w-full min-w-[20rem] text-sm" aria-label="Servers">
              <thead>
                <tr className="border-b border-zinc-200 text-left text-xs font-semibold tracking-wide text-zinc-600 uppercase dark:border-zinc-800 dark:text-zinc-400">
                  <th scope="col" className="py-2 pr-4">Server</th>
                  <th scope="col" className="py-2 pr-4">Host</th>
                  <th scope="col" className="py-2 pr-4">Port</th>
                  <th scope="col" className="py-2">Security</th>
                </tr>
              </thead>
              <tbody className="divide-y divide-zinc-100 dark:divide-zinc-800">
                <EndpointRow kind="Incoming (IMAP)" endpoint={settings.imaps} preferred />
                <EndpointRow kind="Incoming (IMAP)" endpoint={settings.imap} preferred={false} />
                <EndpointRow kind="Outgoing (SMTP)" endpoint={settings.submissions} preferred />
                <EndpointRow kind="Outgoing (SMTP)" endpoint={settings.submission} preferred={false} />
              </tbody>
            </table>
          </div>

          <div className="flex flex-wrap gap-2">
            <a href={settings.mobileconfigUrl} download className={buttonClasses("secondary")}>
              Download Apple profile (.mobileconfig)
            </a>
            <a href={settings.autoconfigUrl} target="_blank" rel="noopener noreferrer" className={buttonClasses("ghost")}>
              Thunderbird autoconfig (XML)
            </a>
          </div>
        </div>
      )}
    </Card>
  );
}
