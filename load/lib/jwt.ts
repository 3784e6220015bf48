/**
 * A tiny HS256 JWT signer: all the bench needs to authenticate agents (and nothing to verify).
 * Hand-written to keep the load tool free of the hub's own auth code paths.
 */
import { createHmac } from 'node:crypto';

export interface AgentClaims {
  projectKey: string;
  sessionId?: string;
}

function base64Url(input: string | Buffer): string {
  return Buffer.from(input).toString('base64url');
}

/** Signs `claims` with HS256; the token expires `ttlSeconds` from now (default one hour). */
export function signHs256(claims: AgentClaims, secret: string, ttlSeconds = 3600): string {
  const issuedAt = Math.floor(Date.now() / 1000);
  const header = base64Url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const payload = base64Url(JSON.stringify({ ...claims, iat: issuedAt, exp: issuedAt + ttlSeconds }));
  const signature = createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url');
  return `${header}.${payload}.${signature}`;
}
