// The benchmark's peer: panva's oidc-provider (installed at run time by benchmarks/peer.py into a
// scratch folder, never committed), configured to do the same token work as our IdP:
//   - client_credentials -> JWT access token (RFC 9068, typ at+jwt) signed ES256, TTL 300 s
//   - refresh_token with rotation -> new ES256 JWT access token + new refresh token
//   - discovery and JWKS (one EC P-256 and one RSA 2048 key, generated at start)
//
// Everything comes from the environment (see benchmarks/peer.py):
//   PEER_MODULES       folder whose node_modules holds oidc-provider (and ioredis for redis)
//   PEER_HOST/PORT     where the provider listens (issuer http://HOST:PORT)
//   PEER_CLIENT_ID/PEER_CLIENT_SECRET   the one confidential client (client_secret_basic)
//   PEER_ADAPTER       "memory" (oidc-provider's own MemoryAdapter) or "redis"
//   PEER_REDIS_URL     for the redis adapter
//   PEER_ADMIN_PORT/PEER_ADMIN_TOKEN    benchmark-only side server (separate port, bearer token)
//   PEER_SIGNED_CLIENT_ID/PEER_SIGNED_JWKS  optional: a second client for the cc-signed case,
//                      private_key_jwt (ES256) with that public JWKS; DPoP is then on
//
// The side server (not part of the measured provider):
//   GET /__bench/refresh?n=N   -> JSON list of N fresh refresh tokens (user "bench")
//   GET /__bench/stats         -> error counters seen by the provider
import * as crypto from 'node:crypto';
import * as http from 'node:http';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === '') {
    console.error(`peer: missing environment variable ${name}`);
    process.exit(2);
  }
  return value;
};

const MODULES = path.resolve(env('PEER_MODULES'));
const HOST = env('PEER_HOST', '127.0.0.1');
const PORT = Number(env('PEER_PORT'));
const ADMIN_PORT = Number(env('PEER_ADMIN_PORT'));
const ADMIN_TOKEN = env('PEER_ADMIN_TOKEN');
const CLIENT_ID = env('PEER_CLIENT_ID');
const CLIENT_SECRET = env('PEER_CLIENT_SECRET');
const ADAPTER = env('PEER_ADAPTER', 'memory');
const MEMORY_MAX = Number(env('PEER_MEMORY_MAX', '2000000'));

const SIGNED_CLIENT_ID = process.env.PEER_SIGNED_CLIENT_ID || '';
const SIGNED_JWKS = SIGNED_CLIENT_ID ? JSON.parse(env('PEER_SIGNED_JWKS')) : null;

const ISSUER = `http://${HOST}:${PORT}`;
const RESOURCE = 'urn:bench:api';
const ACCESS_TOKEN_TTL = 300;
const REFRESH_TOKEN_TTL = 30 * 24 * 3600;
const ACCOUNT = 'bench';

// Resolve packages from the scratch folder, not from this file's location.
const requireFromScratch = createRequire(path.join(MODULES, 'package.json'));
const load = (spec) => import(pathToFileURL(requireFromScratch.resolve(spec)).href);
const providerDir = path.dirname(requireFromScratch.resolve('oidc-provider/package.json'));
const loadInternal = (rel) => import(pathToFileURL(path.join(providerDir, rel)).href);

const { default: Provider, errors } = await load('oidc-provider');

// ---------------------------------------------------------------------------------------- keys
function signingKeys() {
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const kid = () => crypto.randomBytes(12).toString('base64url');
  return [
    { ...ec, kid: kid(), use: 'sig', alg: 'ES256' },
    { ...rsa, kid: kid(), use: 'sig', alg: 'RS256' },
  ];
}

// ------------------------------------------------------------------------------------ adapters
let redisCleanup = async () => {};

async function memoryAdapter() {
  // oidc-provider's own in-memory adapter and LRU. Its default factory caps the LRU at 1000
  // entries (tokens, grants and index entries together), which would evict the pre-minted
  // refresh tokens long before a benchmark uses them; only that cap is raised here.
  const { default: MemoryAdapter } = await loadInternal('lib/adapters/memory_adapter.js');
  const { default: LRU } = await loadInternal('lib/helpers/lru.js');
  const store = new LRU({ maxSize: MEMORY_MAX });
  return (model) => new MemoryAdapter(model, store, 0);
}

async function redisAdapter() {
  // Modelled on oidc-provider's example/adapters/redis.js (ioredis): same key layout, the same
  // MULTI per upsert, hashes for consumable models, a per-grant list for revokeByGrantId.
  const { default: Redis } = await load('ioredis');
  const url = env('PEER_REDIS_URL');
  const prefix = `oidc-bench:${crypto.randomBytes(6).toString('hex')}:`;
  // Fail fast (and visibly) when Redis cannot be reached at start.
  const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  let probeError;
  probe.on('error', (err) => { probeError = err; });
  try {
    await probe.connect();
    await probe.ping();
  } catch (err) {
    console.error(`peer: cannot reach Redis at ${url}: ${(probeError || err)?.message || err}`);
    process.exit(1);
  } finally {
    probe.disconnect();
  }
  const client = new Redis(url, { keyPrefix: prefix });
  client.on('error', (err) => console.error('peer: redis error', err?.message || err));
  await client.ping();

  const grantable = new Set([
    'AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode',
    'BackchannelAuthenticationRequest',
  ]);
  const consumable = new Set([
    'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest',
  ]);
  const grantKey = (id) => `grant:${id}`;
  const userCodeKey = (code) => `userCode:${code}`;
  const uidKey = (uid) => `uid:${uid}`;

  class RedisAdapter {
    constructor(name) {
      this.name = name;
    }

    key(id) {
      return `${this.name}:${id}`;
    }

    async upsert(id, payload, expiresIn) {
      const key = this.key(id);
      const multi = client.multi();
      if (consumable.has(this.name)) {
        multi.hset(key, { payload: JSON.stringify(payload) });
      } else {
        multi.set(key, JSON.stringify(payload));
      }
      if (expiresIn) multi.expire(key, expiresIn);

      if (grantable.has(this.name) && payload.grantId) {
        const gKey = grantKey(payload.grantId);
        multi.rpush(gKey, key);
        const ttl = await client.ttl(gKey);
        if (expiresIn > ttl) multi.expire(gKey, expiresIn);
      }
      if (payload.userCode) {
        multi.set(userCodeKey(payload.userCode), id);
        multi.expire(userCodeKey(payload.userCode), expiresIn);
      }
      if (payload.uid) {
        multi.set(uidKey(payload.uid), id);
        multi.expire(uidKey(payload.uid), expiresIn);
      }
      await multi.exec();
    }

    async find(id) {
      if (consumable.has(this.name)) {
        const data = await client.hgetall(this.key(id));
        if (!data || !data.payload) return undefined;
        const { payload, ...rest } = data;
        return { ...rest, ...JSON.parse(payload) };
      }
      const data = await client.get(this.key(id));
      return data ? JSON.parse(data) : undefined;
    }

    async findByUid(uid) {
      const id = await client.get(uidKey(uid));
      return id ? this.find(id) : undefined;
    }

    async findByUserCode(userCode) {
      const id = await client.get(userCodeKey(userCode));
      return id ? this.find(id) : undefined;
    }

    async destroy(id) {
      await client.del(this.key(id));
    }

    async revokeByGrantId(grantId) {
      // the list holds unprefixed keys; ioredis adds keyPrefix to each DEL
      const keys = await client.lrange(grantKey(grantId), 0, -1);
      const multi = client.multi();
      for (const key of keys) multi.del(key);
      multi.del(grantKey(grantId));
      await multi.exec();
    }

    async consume(id) {
      await client.hset(this.key(id), 'consumed', Math.floor(Date.now() / 1000));
    }
  }

  // Remove this run's keys on shutdown, so a benchmark leaves nothing behind in Redis.
  redisCleanup = async () => {
    const raw = new Redis(url);
    try {
      let cursor = '0';
      do {
        // eslint-disable-next-line no-await-in-loop
        const [next, keys] = await raw.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        // eslint-disable-next-line no-await-in-loop
        if (keys.length) await raw.unlink(...keys);
        cursor = next;
      } while (cursor !== '0');
    } finally {
      raw.disconnect();
      client.disconnect();
    }
  };

  return RedisAdapter;
}

let adapter;
if (ADAPTER === 'memory') {
  adapter = await memoryAdapter();
} else if (ADAPTER === 'redis') {
  adapter = await redisAdapter();
} else {
  console.error(`peer: unknown PEER_ADAPTER ${ADAPTER}`);
  process.exit(2);
}

// ------------------------------------------------------------------------------------ provider
const configuration = {
  adapter,
  clients: [{
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials', 'refresh_token', 'authorization_code'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1/cb'],
  }, ...(SIGNED_CLIENT_ID ? [{
    // The FAPI 2.0 way: a signed client assertion (RFC 7523) and DPoP-bound tokens (RFC 9449).
    client_id: SIGNED_CLIENT_ID,
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: 'ES256',
    jwks: SIGNED_JWKS,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
  }] : [])],
  jwks: { keys: signingKeys() },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  scopes: ['openid', 'offline_access', 'api'],
  async findAccount(ctx, sub) {
    return { accountId: sub, async claims() { return { sub }; } };
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    dPoP: { enabled: Boolean(SIGNED_CLIENT_ID) },  // proofs' jti kept by the adapter (ReplayDetection)
    resourceIndicators: {
      enabled: true,
      // No `resource` parameter needed: the one resource server is the default.
      defaultResource: async (ctx, client, oneOf) => oneOf ?? RESOURCE,
      useGrantedResource: async () => true,
      async getResourceServerInfo(ctx, resourceIndicator) {
        if (resourceIndicator !== RESOURCE) throw new errors.InvalidTarget();
        return {
          scope: 'api',
          accessTokenFormat: 'jwt',
          accessTokenTTL: ACCESS_TOKEN_TTL,
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
  },
  rotateRefreshToken: true,
  ttl: {
    AccessToken: ACCESS_TOKEN_TTL,
    ClientCredentials: ACCESS_TOKEN_TTL,
    RefreshToken: REFRESH_TOKEN_TTL,
    Grant: REFRESH_TOKEN_TTL,
    AuthorizationCode: 60,
    IdToken: 3600,
    Interaction: 3600,
    Session: 12 * 3600,
  },
};

const provider = new Provider(ISSUER, configuration);
provider.proxy = false; // plain HTTP on loopback, no reverse proxy in front

const stats = { server_error: 0, grant_error: 0, last_server_error: null };
provider.on('server_error', (ctx, err) => {
  stats.server_error += 1;
  stats.last_server_error = String(err?.stack || err);
  console.error('peer: server_error', err);
});
provider.on('grant.error', () => { stats.grant_error += 1; });

// --------------------------------------------------------------------- refresh token minting
const clientPromise = provider.Client.find(CLIENT_ID);

async function mintRefreshToken() {
  const client = await clientPromise;
  const grant = new provider.Grant({ accountId: ACCOUNT, clientId: CLIENT_ID });
  grant.addOIDCScope('offline_access');
  grant.addResourceScope(RESOURCE, 'api');
  const grantId = await grant.save();
  const refreshToken = new provider.RefreshToken({
    accountId: ACCOUNT,
    authTime: Math.floor(Date.now() / 1000),
    client,
    expiresWithSession: false,
    grantId,
    gty: 'authorization_code',
    resource: RESOURCE,
    rotations: 0,
    scope: 'offline_access api',
  });
  return refreshToken.save();
}

async function mintMany(n) {
  const out = new Array(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next;
      next += 1;
      // eslint-disable-next-line no-await-in-loop
      out[i] = await mintRefreshToken();
    }
  };
  await Promise.all(Array.from({ length: Math.min(64, n) }, worker));
  return out;
}

const admin = http.createServer(async (req, res) => {
  const send = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  try {
    const expected = Buffer.from(`Bearer ${ADMIN_TOKEN}`);
    const given = Buffer.from(req.headers.authorization || '');
    if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) {
      send(401, { error: 'unauthorized' });
      return;
    }
    const url = new URL(req.url, 'http://admin');
    if (req.method === 'GET' && url.pathname === '/__bench/refresh') {
      const n = Number(url.searchParams.get('n') || '1');
      if (!Number.isInteger(n) || n < 1 || n > 1_000_000) {
        send(400, { error: 'n must be an integer in 1..1000000' });
        return;
      }
      send(200, await mintMany(n));
    } else if (req.method === 'GET' && url.pathname === '/__bench/stats') {
      send(200, stats);
    } else {
      send(404, { error: 'not_found' });
    }
  } catch (err) {
    console.error('peer: admin error', err);
    send(500, { error: String(err?.stack || err) });
  }
});

// ------------------------------------------------------------------------------------- start
const server = http.createServer(provider.callback());
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(PORT, HOST, resolve);
});
await new Promise((resolve, reject) => {
  admin.once('error', reject);
  admin.listen(ADMIN_PORT, '127.0.0.1', resolve);
});
console.log(JSON.stringify({
  ready: true, issuer: ISSUER, admin: `http://127.0.0.1:${ADMIN_PORT}`, adapter: ADAPTER, pid: process.pid,
}));

let stopping = false;
async function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  const timer = setTimeout(() => process.exit(1), 5000);
  timer.unref();
  server.close();
  admin.close();
  server.closeAllConnections?.();
  admin.closeAllConnections?.();
  try {
    await redisCleanup();
  } catch (err) {
    console.error('peer: redis cleanup failed', err);
  }
  console.log(JSON.stringify({ stopped: signal }));
  process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
