// A real OpenID Connect provider (the certified `oidc-provider` package) on a loopback port.
//
// Usage: node provider.mjs CONFIG.json
// CONFIG: {"clients": [{"client_id", "client_secret", "redirect_uris", "id_token_ttl"?}],
//          "accounts": {"<login>": {"password", "sub", "email", "email_verified", "name"}}}
// Prints one JSON line {"issuer": "http://127.0.0.1:PORT"} once it listens, then serves until
// killed. Sign-in and consent are plain HTML forms at /interaction/<uid>, as a person would use.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { URLSearchParams } from 'node:url';

import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const accountsByLogin = config.accounts;
const accountsBySub = new Map(Object.values(accountsByLogin).map((account) => [account.sub, account]));
const idTokenTtl = new Map(config.clients.map((client) => [client.client_id, client.id_token_ttl ?? 3600]));

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(res, status, title, body) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html><html><head><title>${escape(title)}</title></head><body>${body}</body></html>`);
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 16384) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

let provider;

async function interaction(req, res) {
  const [, , uid, action] = new URL(req.url, 'http://x').pathname.split('/');
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return page(res, 400, 'Error', '<p>Unknown interaction.</p>');
  const { prompt, params, session } = details;
  if (req.method === 'GET') {
    if (prompt.name === 'login') {
      return page(res, 200, 'Sign in', `<h1>Sign in to ${escape(params.client_id)}</h1>
        <form method="post" action="/interaction/${uid}/login">
          <input name="login" autofocus> <input name="password" type="password">
          <button type="submit">Sign in</button></form>`);
    }
    return page(res, 200, 'Consent', `<h1>Allow ${escape(params.client_id)}?</h1>
      <p>Scopes: ${escape([...prompt.details.missingOIDCScope ?? []].join(' '))}</p>
      <form method="post" action="/interaction/${uid}/confirm"><button type="submit">Allow</button></form>
      <form method="post" action="/interaction/${uid}/abort"><button type="submit">Deny</button></form>`);
  }
  if (action === 'login') {
    const form = await readForm(req);
    const account = accountsByLogin[form.get('login')];
    if (!account || account.password !== form.get('password')) {
      return page(res, 401, 'Sign in', '<p class="error">Invalid login or password.</p>');
    }
    return provider.interactionFinished(req, res, { login: { accountId: account.sub } }, {
      mergeWithLastSubmission: false,
    });
  }
  if (action === 'confirm') {
    await readForm(req);
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const missing = prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, {
      mergeWithLastSubmission: true,
    });
  }
  if (action === 'abort') {
    await readForm(req);
    return provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
  }
  return page(res, 404, 'Not found', '<p>Not found.</p>');
}

const server = createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((error) => {
      if (!res.headersSent) page(res, 500, 'Error', `<p>${escape(error.message)}</p>`);
    });
    return;
  }
  provider.callback()(req, res);
});

server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  provider = new Provider(issuer, {
    clients: config.clients.map(({ id_token_ttl, ...client }) => ({
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'client_secret_basic',
      ...client,
    })),
    async findAccount(ctx, sub) {
      const account = accountsBySub.get(sub);
      if (!account) return undefined;
      return {
        accountId: sub,
        async claims() {
          return { sub, email: account.email, email_verified: account.email_verified, name: account.name };
        },
      };
    },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    jwks: { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'test-key-1', alg: 'RS256', use: 'sig' }] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    pkce: { required: () => true },
    ttl: {
      IdToken: (ctx, token, client) => idTokenTtl.get(client.clientId) ?? 3600,
      AccessToken: 600,
      AuthorizationCode: 60,
      Grant: 3600,
      Interaction: 600,
      Session: 3600,
    },
  });
  // Errors a client caused are answered to it; the test reads them there, not on stderr.
  provider.on('server_error', (ctx, error) => console.error('server_error', error));
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

process.on('SIGTERM', () => server.close(() => process.exit(0)));
