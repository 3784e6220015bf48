/**
 * Production Redis settings: two hubs that find their Redis through a real Sentinel
 * (`redis-server --sentinel`), with the password read from a file; and the pure mapping of the
 * REDIS_* settings to client options (TLS files, Sentinel, refusals), without Redis.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { redisTarget } from '../src/cluster/connection';
import { ConfigError, loadConfig } from '../src/config';
import type { Hub } from '../src/server';
import { idsAt, listAt, startClusterHub } from './support/cluster';
import { closeAllPeers, connectTracker, newSessionId, projectKey } from './support/live';
import { RedisSentinel, RedisServer } from './support/redis';
import { eventually } from './support/wait';

const PK = projectKey('sentinel');
const SECRET = 'sentinel-test-secret-0001';

describe('through a real Sentinel, password from a file', () => {
  let redis: RedisServer;
  let sentinel: RedisSentinel;
  let dir: string;
  const hubs: Hub[] = [];

  beforeAll(async () => {
    redis = await RedisServer.start(['--requirepass', SECRET]);
    sentinel = await RedisSentinel.start(redis, 'hubprimary', SECRET);
    dir = mkdtempSync(path.join(tmpdir(), 'hub-secret-'));
    writeFileSync(path.join(dir, 'redis-password'), `${SECRET}\n`, { mode: 0o600 });
  }, 30_000);

  afterAll(async () => {
    await closeAllPeers();
    await Promise.all(hubs.map((h) => h.shutdown()));
    await sentinel?.stop();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const env = () => ({
    REDIS_URL: '',
    REDIS_SENTINELS: `127.0.0.1:${sentinel.port}`,
    REDIS_SENTINEL_NAME: 'hubprimary',
    REDIS_PASSWORD_FILE: path.join(dir, 'redis-password'),
  });

  test('two nodes join through the sentinel and share their sessions', async () => {
    const a = await startClusterHub('', 'sentinel-a', env());
    hubs.push(a);
    const b = await startClusterHub('', 'sentinel-b', env());
    hubs.push(b);
    expect(a.ctx.store.status()).toEqual({ ready: true, partial: false });
    const sid = newSessionId();
    await connectTracker(a.url, { projectKey: PK, sessionId: sid });
    await eventually(async () => (await idsAt(b.url, PK)).includes(sid), async () => (await idsAt(b.url, PK)).join(), 3_000);
    expect((await listAt(b.url, PK)).partial).toBe(false);
  }, 30_000);

  test('a wrong password in the file: the node does not join, /ready answers 503', async () => {
    writeFileSync(path.join(dir, 'wrong'), 'not-the-password\n');
    const c = await startClusterHub('', 'sentinel-c', { ...env(), REDIS_PASSWORD_FILE: path.join(dir, 'wrong'), CLUSTER_JOIN_TIMEOUT_MS: '500' });
    hubs.push(c);
    expect(c.ctx.store.status().ready).toBe(false);
    expect((await fetch(`${c.url}/ready`)).status).toBe(503);
  }, 30_000);
});

describe('redisTarget: the REDIS_* settings as client options', () => {
  const files: Record<string, string> = { '/ca.pem': 'CA', '/cert.pem': 'CERT', '/key.pem': 'KEY', '/pw': 'pw-from-file\n' };
  const read = (p: string) => {
    const text = files[p];
    if (text === undefined) throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
    return text;
  };
  const target = (env: Record<string, string>) => redisTarget(loadConfig(env), read);

  test('no Redis: single node', () => {
    expect(target({})).toBeUndefined();
  });

  test('a URL, with TLS files and a server name; the description has no credentials', () => {
    const t = target({ REDIS_URL: 'rediss://user:hunter2@redis.internal:6380/2', REDIS_TLS_CA_FILE: '/ca.pem', REDIS_TLS_CERT_FILE: '/cert.pem', REDIS_TLS_KEY_FILE: '/key.pem', REDIS_TLS_SERVERNAME: 'redis.example' });
    expect(t?.url).toBe('rediss://user:hunter2@redis.internal:6380/2');
    expect(t?.options.tls).toEqual({ ca: 'CA', cert: 'CERT', key: 'KEY', servername: 'redis.example' });
    expect(t?.describe).toBe('rediss://redis.internal:6380/2');
  });

  test('Sentinel with a password file, its own password, and TLS for sentinels and primary alike', () => {
    const t = target({ REDIS_SENTINELS: 's1:26379, s2:26380', REDIS_SENTINEL_NAME: 'main', REDIS_PASSWORD_FILE: '/pw', REDIS_SENTINEL_PASSWORD: 'spw', REDIS_TLS: 'true' });
    expect(t?.url).toBeUndefined();
    expect(t?.options).toMatchObject({
      sentinels: [
        { host: 's1', port: 26379 },
        { host: 's2', port: 26380 },
      ],
      name: 'main',
      password: 'pw-from-file',
      sentinelPassword: 'spw',
      tls: {},
      sentinelTLS: {},
      enableTLSForSentinelMode: true,
    });
    expect(t?.describe).toBe('sentinel main via s1:26379,s2:26380');
  });

  test.each([
    ['both a URL and sentinels', { REDIS_URL: 'redis://h:1', REDIS_SENTINELS: 's:1' }, /REDIS_URL or REDIS_SENTINELS/],
    ['both password settings', { REDIS_URL: 'redis://h:1', REDIS_PASSWORD: 'a', REDIS_PASSWORD_FILE: '/pw' }, /REDIS_PASSWORD or REDIS_PASSWORD_FILE/],
    ['an unreadable password file', { REDIS_URL: 'redis://h:1', REDIS_PASSWORD_FILE: '/missing' }, /REDIS_PASSWORD_FILE: cannot read \/missing \(ENOENT\)/],
    ['a certificate without its key', { REDIS_URL: 'redis://h:1', REDIS_TLS_CERT_FILE: '/cert.pem' }, /go together/],
  ])('refused: %s', (_what, env, message) => {
    expect(() => target(env)).toThrow(ConfigError);
    expect(() => target(env)).toThrow(message);
  });

  test('a malformed sentinel list is a configuration error naming the variable', () => {
    expect(() => loadConfig({ REDIS_SENTINELS: 'nohostport' })).toThrow(/REDIS_SENTINELS/);
  });
});
