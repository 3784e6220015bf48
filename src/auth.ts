/**
 * Who may do what: API keys (REST and dashboards) and agent/dashboard JWTs. Keys are compared in
 * constant time; tokens are HS256 only, with `exp` honoured.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import jwt from 'jsonwebtoken';
import { type ApiKeyGrant, type Config, ConfigError, parseApiKeys, parseApiKeysJson } from './config';

export type KeyCheck = 'ok' | 'missing' | 'invalid' | 'forbidden';

/** A key check, and which configured key matched: per-key state (rate limits) is kept under that id, never the key. */
export interface KeyMatch {
  check: KeyCheck;
  /** The same for a key listed twice; -1 when no key matched. */
  keyId: number;
}

/** Strips an HTTP auth scheme `Bearer ` (any case, as RFC 7235 schemes are case-insensitive). */
export function withoutBearer(value: string): string {
  return /^bearer /i.test(value) ? value.slice(7) : value;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

export class ApiKeys {
  private readonly grants: { digest: Buffer; projects: ReadonlySet<string> | '*'; keyId: number }[];

  constructor(grants: readonly ApiKeyGrant[]) {
    const ids = new Map<string, number>();
    this.grants = grants.map((g) => {
      const d = digest(g.key);
      const hex = d.toString('hex');
      const keyId = ids.get(hex) ?? ids.size;
      ids.set(hex, keyId);
      return { digest: d, projects: g.projects, keyId };
    });
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
    return this.match(presented, projectKey).check;
  }

  /** `check`, and which configured key matched (one hash of the presented key for both). */
  match(presented: string | undefined, projectKey: string): KeyMatch {
    if (!presented) return { check: 'missing', keyId: -1 };
    const value = withoutBearer(presented);
    const d = digest(value);
    // A key may be listed more than once (HUB_API_KEYS and the file add up): its grants add up too.
    let keyId = -1;
    let allowed = false;
    for (const grant of this.grants) {
      if (!timingSafeEqual(grant.digest, d)) continue;
      keyId = grant.keyId;
      if (grant.projects === '*' || grant.projects.has(projectKey)) allowed = true;
    }
    if (keyId === -1) return { check: 'invalid', keyId };
    return { check: allowed ? 'ok' : 'forbidden', keyId };
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
