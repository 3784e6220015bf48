/**
 * Who may do what: API keys (REST and dashboards) and agent/dashboard JWTs. Keys are compared in
 * constant time; tokens are HS256 only, with `exp` honoured.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import jwt from 'jsonwebtoken';
import { type ApiKeyGrant, type Config, ConfigError, parseApiKeys, parseApiKeysJson } from './config';

export type KeyCheck = 'ok' | 'missing' | 'invalid' | 'forbidden';

/** Strips an HTTP auth scheme `Bearer ` (any case, as RFC 7235 schemes are case-insensitive). */
export function withoutBearer(value: string): string {
  return /^bearer /i.test(value) ? value.slice(7) : value;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

export class ApiKeys {
  private readonly grants: { digest: Buffer; projects: ReadonlySet<string> | '*' }[];

  constructor(grants: readonly ApiKeyGrant[]) {
    this.grants = grants.map((g) => ({ digest: digest(g.key), projects: g.projects }));
  }

  get size(): number {
    return this.grants.length;
  }

  /**
   * Checks a presented key (an `Authorization` header value, `Bearer ` prefix allowed) against every
   * configured key: each comparison is constant-time on fixed-length digests, and every key is
   * compared, so timing says nothing about which key or how much of it matched.
   */
  check(presented: string | undefined, projectKey: string): KeyCheck {
    if (!presented) return 'missing';
    const value = withoutBearer(presented);
    const d = digest(value);
    // A key may be listed more than once (HUB_API_KEYS and the file add up): its grants add up too.
    let known = false;
    let allowed = false;
    for (const grant of this.grants) {
      if (!timingSafeEqual(grant.digest, d)) continue;
      known = true;
      if (grant.projects === '*' || grant.projects.has(projectKey)) allowed = true;
    }
    if (!known) return 'invalid';
    return allowed ? 'ok' : 'forbidden';
  }
}

/** Loads the API keys from HUB_API_KEYS and HUB_API_KEYS_FILE (both may be set: keys add up). */
export function loadApiKeys(config: Config): ApiKeyGrant[] {
  const grants: ApiKeyGrant[] = [];
  if (config.apiKeys) grants.push(...parseApiKeys(config.apiKeys));
  if (config.apiKeysFile) {
    let text: string;
    try {
      text = readFileSync(config.apiKeysFile, 'utf8');
    } catch (err) {
      throw new ConfigError(`HUB_API_KEYS_FILE: cannot read ${config.apiKeysFile}: ${(err as Error).message}`);
    }
    grants.push(...parseApiKeysJson(text, config.apiKeysFile));
  }
  return grants;
}

export type TokenCheck<T> = { ok: true; claims: T } | { ok: false; reason: 'missing' | 'invalid' | 'expired' };

/** Verifies an HS256 JWT (optionally prefixed `Bearer `). Any other algorithm, `none` included, fails. */
export function verifyToken(token: unknown, secret: string): TokenCheck<jwt.JwtPayload> {
  if (typeof token !== 'string' || token === '') return { ok: false, reason: 'missing' };
  const raw = withoutBearer(token);
  try {
    const claims = jwt.verify(raw, secret, { algorithms: ['HS256'] });
    if (typeof claims !== 'object' || claims === null) return { ok: false, reason: 'invalid' };
    return { ok: true, claims };
  } catch (err) {
    return { ok: false, reason: err instanceof jwt.TokenExpiredError ? 'expired' : 'invalid' };
  }
}
