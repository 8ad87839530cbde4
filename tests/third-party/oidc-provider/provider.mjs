// A standards OpenID Connect provider for exo's end-to-end tests (oidc-provider by panva):
// the delegated login methods must work with a provider whose routes are not Entra's.
//
//   node provider.mjs <port> <cert.pem> <key.pem> <issuer-url>
//
// Serves HTTPS on 127.0.0.1:<port> only. <issuer-url> must be
// https://127.0.0.1:<port> optionally followed by a path (e.g. /realms/test);
// every endpoint lives under that path. Prints "ready" on stdout once listening.
//
// Interactions are our own minimal, JavaScript-free HTML forms (devInteractions
// is disabled): user "alice" (or "alice@example.test") with password
// "correct-horse"; consent is granted automatically.
import { createServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { generateKeyPairSync, randomBytes } from 'node:crypto';

import Provider from 'oidc-provider';

const [portArg, certPath, keyPath, issuerArg] = process.argv.slice(2);
if (!portArg || !certPath || !keyPath || !issuerArg) {
  console.error('usage: node provider.mjs <port> <cert.pem> <key.pem> <issuer-url>');
  process.exit(2);
}
const port = Number.parseInt(portArg, 10);
const issuer = issuerArg.replace(/\/+$/, ''); // no trailing slash in the issuer string
const mount = new URL(issuer).pathname.replace(/\/+$/, ''); // '' or e.g. '/realms/test'

const CLIENT_ID = 'exo-test-client';
const EXTRA_SCOPE = 'https://outlook.office365.com/.default';
const USERS = {
  alice: {
    password: 'correct-horse',
    claims: { name: 'Alice Example', preferred_username: 'alice@example.test', email: 'alice@example.test', email_verified: true },
  },
};
const DEVICE_POLL_INTERVAL = 1; // seconds
const LOGIN_ALIASES = { alice: 'alice', 'alice@example.test': 'alice' };

// Fresh RS256 signing key per process; published at {issuer}/jwks.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = { ...privateKey.export({ format: 'jwk' }), kid: `rs256-${randomBytes(6).toString('hex')}`, alg: 'RS256', use: 'sig' };

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
const page = (title, body) => `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${esc(title)}</title></head>
<body><h1>${esc(title)}</h1>
${body}
</body></html>`;

const configuration = {
  clients: [{
    client_id: CLIENT_ID,
    client_name: 'exo test client',
    application_type: 'native', // => loopback redirect URIs match on any port (RFC 8252 7.3)
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/', 'http://127.0.0.1', 'http://localhost/', 'http://[::1]/'],
    id_token_signed_response_alg: 'RS256',
  }],
  responseTypes: ['code'],
  jwks: { keys: [signingJwk] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  scopes: ['openid', 'profile', 'email', 'offline_access', EXTRA_SCOPE],
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
  },
  // Put scope-requested claims (name, preferred_username) into the ID token for
  // the code flow too, not only into /me.
  conformIdTokenClaims: false,
  pkce: { required: () => true }, // only S256 exists in oidc-provider 9
  features: {
    devInteractions: { enabled: false },
    deviceFlow: {
      enabled: true,
      userCodeInputSource: async (ctx, form, out, err) => {
        let msg = '<p>Enter the code displayed on your device</p>';
        if (err && (err.userCode || err.name === 'NoCodeError')) msg = '<p class="error">The code you entered is incorrect. Try again</p>';
        else if (err && err.name === 'AbortedError') msg = '<p class="error">The Sign-in request was interrupted</p>';
        else if (err) msg = '<p class="error">There was an error processing your request</p>';
        ctx.body = page('Device sign-in', `${msg}\n${form}\n<button type="submit" form="op.deviceInputForm">Continue</button>`);
      },
      userCodeConfirmSource: async (ctx, form, client, deviceInfo, userCode) => {
        ctx.body = page('Confirm device', `<p>${esc(client.clientName || client.clientId)} shows code <code>${esc(userCode)}</code></p>
${form}
<button type="submit" form="op.deviceConfirmForm">Continue</button>
<button type="submit" form="op.deviceConfirmForm" value="yes" name="abort">Abort</button>`);
      },
      successSource: async (ctx) => {
        ctx.body = page('Sign-in Success', '<p id="device-success">Your sign-in was successful, you can now close this page.</p>');
      },
    },
    revocation: { enabled: true },
    introspection: { enabled: false },
  },
  interactions: {
    url: (ctx, interaction) => `${mount}/interaction/${interaction.uid}`,
  },
  async findAccount(ctx, sub) {
    const user = USERS[sub];
    if (!user) return undefined;
    return {
      accountId: sub,
      async claims() { return { sub, ...user.claims }; },
    };
  },
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 120,
    IdToken: 3600,
    RefreshToken: 14 * 24 * 3600,
    DeviceCode: 600,
    Interaction: 3600,
    Session: 14 * 24 * 3600,
    Grant: 14 * 24 * 3600,
    ClientCredentials: 600,
    BackchannelAuthenticationRequest: 600,
    PreAuthorizedCode: 600,
  },
  renderError: async (ctx, out) => {
    ctx.type = 'html';
    ctx.body = page('Error', Object.entries(out).map(([k, v]) => `<p><strong>${esc(k)}</strong>: <span class="${esc(k)}">${esc(v)}</span></p>`).join('\n'));
  },
};

const provider = new Provider(issuer, configuration);

// oidc-provider omits `interval` from the device authorization response
// (clients then default to 5 s, RFC 8628 3.2) and never answers slow_down;
// advertise 1 s so e2e tests poll quickly.
provider.use(async (ctx, next) => {
  await next();
  if (ctx.oidc?.route === 'device_authorization' && ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
    ctx.body = { ...ctx.body, interval: DEVICE_POLL_INTERVAL };
  }
});

// ---- our interaction routes (plain HTML forms, no JavaScript) -------------
async function readForm(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
}

function loginForm(uid, loginHint, error) {
  return page('Sign-in', `${error ? `<p class="error" id="login-error">${esc(error)}</p>` : ''}
<form id="login" method="post" action="${esc(`${mount}/interaction/${uid}`)}" autocomplete="off">
  <input type="hidden" name="prompt" value="login">
  <input type="text" name="login" placeholder="alice" value="${esc(loginHint || '')}">
  <input type="password" name="password" placeholder="password">
  <button type="submit">Sign-in</button>
</form>
<p><a href="${esc(`${mount}/interaction/${uid}/abort`)}">Cancel</a></p>`);
}

async function finish(ctx, result, mergeWithLastSubmission) {
  const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission });
  ctx.set('Cache-Control', 'no-store');
  ctx.redirect(returnTo);
  ctx.status = 303;
}

async function autoConsent(ctx, details) {
  const { prompt: { details: missing }, grantId, session, params } = details;
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  if (missing.missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
  }
  await finish(ctx, { consent: { grantId: await grant.save() } }, true);
}

provider.use(async (ctx, next) => {
  const m = /^\/interaction\/([^/]+)(\/abort)?$/.exec(ctx.path);
  if (!m) return next();
  ctx.set('Cache-Control', 'no-store');
  ctx.type = 'html';
  let details;
  try {
    details = await provider.interactionDetails(ctx.req, ctx.res);
  } catch (err) {
    ctx.status = 400;
    ctx.body = page('Error', `<p class="error">${esc(err.name)}: ${esc(err.message)}</p>`);
    return undefined;
  }
  if (details.uid !== m[1]) {
    ctx.status = 400;
    ctx.body = page('Error', '<p class="error">interaction cookie does not match URL</p>');
    return undefined;
  }
  if (m[2]) { // GET /interaction/:uid/abort
    return finish(ctx, { error: 'access_denied', error_description: 'End-User aborted interaction' }, false);
  }
  const promptName = details.prompt.name;
  if (promptName === 'consent') return autoConsent(ctx, details); // GET or POST
  if (promptName !== 'login') {
    ctx.status = 501;
    ctx.body = page('Error', `<p class="error">prompt ${esc(promptName)} not implemented</p>`);
    return undefined;
  }
  if (ctx.method === 'GET') {
    ctx.body = loginForm(details.uid, details.params.login_hint);
    return undefined;
  }
  if (ctx.method !== 'POST') {
    ctx.status = 405;
    return undefined;
  }
  const form = await readForm(ctx.req);
  const accountId = LOGIN_ALIASES[String(form.login || '').trim()];
  if (!accountId || USERS[accountId].password !== form.password) {
    ctx.status = 200;
    ctx.body = loginForm(details.uid, form.login, 'Invalid username or password.');
    return undefined;
  }
  return finish(ctx, { login: { accountId } }, false);
});

// Log token endpoint errors to stderr (helps debugging e2e failures).
provider.on('grant.error', (ctx, err) => console.error(`grant.error: ${err.name} ${err.message} ${err.error_description || ''}`));
provider.on('server_error', (ctx, err) => console.error('server_error', err));

// ---- offline_access without prompt=consent -------------------------------
// OIDC Core 11 (and oidc-provider) silently drop offline_access from an
// authorization request unless prompt contains "consent", so no refresh token
// would be issued. Clients written for Entra ID never send prompt=consent, so
// add it to GET {issuer}/auth requests here. Consent is auto-granted by the
// interaction routes above, so this adds no user step. Done on the raw URL
// (before Koa) so that oidc-provider's mount-path detection, which compares
// req.originalUrl with req.url, stays consistent.
function addConsentPromptForOfflineAccess(req) {
  if (req.method !== 'GET') return;
  const u = new URL(req.url, 'http://x');
  if (u.pathname !== '/auth') return;
  const scopes = (u.searchParams.get('scope') || '').split(' ');
  const prompts = (u.searchParams.get('prompt') || '').split(' ').filter(Boolean);
  if (!scopes.includes('offline_access') || prompts.includes('consent') || prompts.includes('none')) return;
  u.searchParams.set('prompt', [...prompts, 'consent'].join(' '));
  req.url = `${u.pathname}${u.search}`;
  if (mount) req.originalUrl = `${mount}${req.url}`;
}

const handler = provider.callback();
const server = createServer({ cert: readFileSync(certPath), key: readFileSync(keyPath) }, (req, res) => {
  if (mount) {
    const path = req.url.split('?')[0];
    if (path !== mount && !path.startsWith(`${mount}/`)) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
      return;
    }
    // Same as express' app.use(mount, ...): oidc-provider derives the mount
    // path from originalUrl vs url.
    req.originalUrl = req.url;
    req.url = req.url.slice(mount.length) || '/';
    if (req.url.startsWith('?')) req.url = `/${req.url}`;
  }
  addConsentPromptForOfflineAccess(req);
  handler(req, res);
});

server.listen(port, '127.0.0.1', () => {
  process.stdout.write('ready\n');
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
