/**
 * Where the cluster's Redis is and how to reach it, from the configuration: one URL (`REDIS_URL`),
 * or Sentinel discovery (`REDIS_SENTINELS` + `REDIS_SENTINEL_NAME`) through ioredis' own support,
 * with the password from its own variable or a file and TLS settings from files. Pure but for the
 * file reads, which are done once at start; a file that cannot be read stops the start with a
 * message naming the variable (never the secret).
 */
import { readFileSync } from 'node:fs';
import type { RedisOptions } from 'ioredis';
import Redis from 'ioredis';
import { type Config, ConfigError } from '../config';

export interface RedisTarget {
  /** `redis://` or `rediss://` URL; undefined with Sentinel. */
  url?: string;
  /** Connection options every client of the hub starts from (sentinels, credentials, TLS). */
  options: RedisOptions;
  /** For logs: where, never with credentials. */
  describe: string;
}

type ReadFile = (path: string) => string;

const readText: ReadFile = (path) => readFileSync(path, 'utf8');

function readSetting(variable: string, path: string, read: ReadFile): string {
  try {
    return read(path);
  } catch (err) {
    const why = err instanceof Error && 'code' in err ? String((err as NodeJS.ErrnoException).code) : 'unreadable';
    throw new ConfigError(`invalid configuration: ${variable}: cannot read ${path} (${why})`);
  }
}

/** `host:port,host:port` -> sentinel addresses (the config schema already checked the shape). */
export function parseSentinels(spec: string): { host: string; port: number }[] {
  return spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const colon = entry.lastIndexOf(':');
      return { host: entry.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(entry.slice(colon + 1)) };
    });
}

/** The Redis the cluster runs on; undefined = single node (neither REDIS_URL nor REDIS_SENTINELS). */
export function redisTarget(config: Config, read: ReadFile = readText): RedisTarget | undefined {
  if (config.redisUrl === undefined && config.redisSentinels === undefined) return undefined;
  if (config.redisUrl !== undefined && config.redisSentinels !== undefined) {
    throw new ConfigError('invalid configuration: set REDIS_URL or REDIS_SENTINELS, not both');
  }
  if (config.redisPassword !== undefined && config.redisPasswordFile !== undefined) {
    throw new ConfigError('invalid configuration: set REDIS_PASSWORD or REDIS_PASSWORD_FILE, not both');
  }
  const options: RedisOptions = {};
  const password = config.redisPasswordFile !== undefined ? readSetting('REDIS_PASSWORD_FILE', config.redisPasswordFile, read).replace(/\r?\n$/, '') : config.redisPassword;
  if (password !== undefined) options.password = password;
  if (config.redisUsername !== undefined) options.username = config.redisUsername;

  const tlsWanted = config.redisTls || config.redisUrl?.startsWith('rediss://') === true;
  if (tlsWanted || config.redisTlsCaFile || config.redisTlsCertFile || config.redisTlsKeyFile || config.redisTlsServerName) {
    if ((config.redisTlsCertFile === undefined) !== (config.redisTlsKeyFile === undefined)) {
      throw new ConfigError('invalid configuration: REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE go together');
    }
    options.tls = {
      ...(config.redisTlsCaFile !== undefined ? { ca: readSetting('REDIS_TLS_CA_FILE', config.redisTlsCaFile, read) } : {}),
      ...(config.redisTlsCertFile !== undefined ? { cert: readSetting('REDIS_TLS_CERT_FILE', config.redisTlsCertFile, read) } : {}),
      ...(config.redisTlsKeyFile !== undefined ? { key: readSetting('REDIS_TLS_KEY_FILE', config.redisTlsKeyFile, read) } : {}),
      ...(config.redisTlsServerName !== undefined ? { servername: config.redisTlsServerName } : {}),
    };
  }

  if (config.redisSentinels !== undefined) {
    options.sentinels = parseSentinels(config.redisSentinels);
    options.name = config.redisSentinelName;
    if (config.redisSentinelPassword !== undefined) options.sentinelPassword = config.redisSentinelPassword;
    if (options.tls) {
      // Sentinels and the primary they point to are reached with the same TLS settings.
      options.enableTLSForSentinelMode = true;
      options.sentinelTLS = options.tls;
    }
    // A failover: a demoted primary closes its client connections, and each reconnection asks the
    // sentinels for the current primary. (ioredis' failoverDetector is not used: its sentinel
    // connections outlive disconnect().)
    const where = options.sentinels.map((s) => `${s.host}:${s.port}`).join(',');
    return { options, describe: `sentinel ${config.redisSentinelName} via ${where}` };
  }
  const url = config.redisUrl as string;
  return { url, options, describe: describeUrl(url) };
}

/** The URL without credentials, for logs. */
function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    return 'redis';
  }
}

/** A client for `target` with the hub's per-client settings on top. */
export function redisClient(target: RedisTarget, extra: RedisOptions): Redis {
  const options = { ...target.options, ...extra };
  return target.url !== undefined ? new Redis(target.url, options) : new Redis(options);
}
