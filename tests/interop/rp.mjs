// A relying party on panva's openid-client (v6, OpenID-certified), driven by the Python tests
// (tests/support/openid_client.py) over JSON lines: one command a line on stdin, one answer a
// line on stdout, in order. The library does every check a strict RP does (issuer, state,
// `iss` in the callback, PKCE, the ID token's signature and claims, userinfo's `sub`); a
// check that fails is an answer {ok: false, error, ...}, never a crash.
//
// Commands (each answer: {ok: true, ...}):
//   configure {issuer, client_id, client_secret?, private_jwk?, dpop?}
//       discovery; client_secret_basic with a secret, private_key_jwt with a private JWK;
//       with dpop, a fresh DPoP key pair for every request of this client. -> {metadata}
//   authorize_url {redirect_uri, scope, par?}  -> {url} (PKCE S256, state, nonce kept here)
//   redeem {callback}  -> {token_type, scope, claims, userinfo, dpop_jkt?}
//   client_credentials {scope?}  -> {token_type, scope, expires_in, access_token}
import * as readline from "node:readline";
import * as client from "openid-client";

let config = null;
let dpop = undefined;
let pending = null;

async function thumbprint(publicKey) {
  const jwk = await crypto.subtle.exportKey("jwk", publicKey);
  const members = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y });
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(members));
  return Buffer.from(digest).toString("base64url");
}

let dpopJkt = null;

const commands = {
  async configure({ issuer, client_id, client_secret, private_jwk, dpop: useDpop }) {
    let auth;
    if (private_jwk) {
      const { d, kid } = private_jwk;
      if (!d) throw new Error("private_jwk has no private part");
      const key = await crypto.subtle.importKey(
        "jwk", private_jwk, { name: "ECDSA", namedCurve: private_jwk.crv }, false, ["sign"]);
      auth = client.PrivateKeyJwt({ key, kid });
    } else {
      auth = client.ClientSecretBasic(client_secret);
    }
    config = await client.discovery(new URL(issuer), client_id, undefined, auth,
                                    { execute: [client.allowInsecureRequests] });
    if (useDpop) {
      const pair = await client.randomDPoPKeyPair("ES256");
      dpop = client.getDPoPHandle(config, pair);
      dpopJkt = await thumbprint(pair.publicKey);
    } else {
      dpop = undefined;
      dpopJkt = null;
    }
    return { metadata: config.serverMetadata() };
  },

  async authorize_url({ redirect_uri, scope, par }) {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const parameters = {
      redirect_uri, scope, state, nonce,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
    };
    const url = par
      ? await client.buildAuthorizationUrlWithPAR(config, parameters, { DPoP: dpop })
      : client.buildAuthorizationUrl(config, parameters);
    pending = { verifier, state, nonce };
    return { url: url.href };
  },

  async redeem({ callback }) {
    if (!pending) throw new Error("redeem before authorize_url");
    const { verifier, state, nonce } = pending;
    pending = null;
    const tokens = await client.authorizationCodeGrant(
      config, new URL(callback),
      { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce,
        idTokenExpected: true },
      undefined, { DPoP: dpop });
    const claims = tokens.claims();
    const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub,
                                                { DPoP: dpop });
    return { token_type: tokens.token_type, scope: tokens.scope ?? null, claims, userinfo,
             has_refresh_token: Boolean(tokens.refresh_token), dpop_jkt: dpopJkt };
  },

  async client_credentials({ scope }) {
    const tokens = await client.clientCredentialsGrant(config, scope ? { scope } : {},
                                                       { DPoP: dpop });
    return { token_type: tokens.token_type, scope: tokens.scope ?? null,
             expires_in: tokens.expires_in ?? null, access_token: tokens.access_token,
             dpop_jkt: dpopJkt };
  },
};

function failure(error) {
  // What openid-client says: its error code, and the server's OAuth error when there was one.
  const answer = { ok: false, error: String(error?.message ?? error), code: error?.code ?? null,
                   name: error?.name ?? null };
  const cause = error?.cause;
  if (Array.isArray(cause)) {  // WWW-Authenticate challenges: [{scheme, parameters}]
    const challenge = cause.find((c) => c?.parameters?.error) ?? cause[0];
    answer.challenge_scheme = challenge?.scheme ?? null;
    answer.oauth_error = challenge?.parameters?.error ?? null;
    answer.oauth_error_description = challenge?.parameters?.error_description ?? null;
  } else if (cause && typeof cause === "object") {
    answer.oauth_error = cause.error ?? null;
    answer.oauth_error_description = cause.error_description ?? null;
  }
  if (error?.error) answer.oauth_error = error.error;
  if (error?.error_description) answer.oauth_error_description = error.error_description;
  if (error?.status) answer.status = error.status;
  return answer;
}

const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of lines) {
  if (!line.trim()) continue;
  let answer;
  try {
    const { op, ...args } = JSON.parse(line);
    const command = commands[op];
    if (!command) throw new Error(`unknown command ${op}`);
    answer = { ok: true, ...(await command(args)) };
  } catch (error) {
    answer = failure(error);
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
}
