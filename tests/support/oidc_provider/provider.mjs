// panva's oidc-provider, configured as a corporate identity provider is out of the box: the
// authorization code flow puts only `sub` (and the protocol claims) in the ID token; `email`,
// `email_verified` and `name` come from the userinfo endpoint (OIDC Core 5.4, 5.5). The ID
// token carries them only when the relying party asks with the `claims` parameter.
//
// Configured by the environment (tests/support/node_provider.py sets it):
//   PORT, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, ACCOUNT (JSON: sub, email, password,
//   email_verified — true, false, or absent to leave the claim out, name).
// Prints one JSON line {"issuer": ...} once it listens on 127.0.0.1:PORT.
//
// Sign-in goes through its own interaction page (/interaction/:uid): a form with email and
// password. Consent is granted to our one client without asking (a first-party client).

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const env = (name) => {
  const value = process.env[name];
  if (!value) {
    console.error(`provider.mjs: ${name} is not set`);
    process.exit(2);
  }
  return value;
};

const port = Number(env('PORT'));
const issuer = `http://127.0.0.1:${port}`;
const account = JSON.parse(env('ACCOUNT'));
const signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey
  .export({ format: 'jwk' });

const provider = new Provider(issuer, {
  clients: [{
    client_id: env('CLIENT_ID'),
    client_secret: env('CLIENT_SECRET'),
    redirect_uris: [env('REDIRECT_URI')],
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  jwks: { keys: [{ ...signingKey, kid: 'corp-1', use: 'sig', alg: 'RS256' }] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    if (id !== account.sub) return undefined;
    return {
      accountId: id,
      async claims() {
        const claims = { sub: id, email: account.email, name: account.name };
        if (account.email_verified !== undefined) claims.email_verified = account.email_verified;
        return claims;
      },
    };
  },
  // The one client is first-party: its grant is made without a consent page.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email profile');
    await grant.save();
    return grant;
  },
});

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(uid, error) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Corp sign-in</title>
</head><body><h1>Corp sign-in</h1>${error ? `<p role="alert">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
<label for="email">Work email</label><input id="email" name="email" type="email" autocomplete="username">
<label for="password">Password</label><input id="password" name="password" type="password">
<button type="submit">Sign in to Corp</button></form></body></html>`;
}

async function body(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString());
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid || details.prompt.name !== 'login') {
    res.writeHead(400, { 'content-type': 'text/plain' }).end('unexpected interaction');
    return;
  }
  if (req.method === 'GET' && !action) {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page(uid));
    return;
  }
  const form = await body(req);
  if (form.get('email') !== account.email || form.get('password') !== account.password) {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
      .end(page(uid, 'Wrong email or password.'));
    return;
  }
  await provider.interactionFinished(req, res, { login: { accountId: account.sub, amr: ['pwd'] } },
    { mergeWithLastSubmission: false });
}

const handle = provider.callback();
createServer((req, res) => {
  const match = req.url.match(/^\/interaction\/([\w-]+)(?:\/(login))?$/);
  if (!match) return handle(req, res);
  interaction(req, res, match[1], match[2]).catch((err) => {
    console.error(err);
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err));
  });
}).listen(port, '127.0.0.1', () => {
  console.log(JSON.stringify({ issuer }));
});
