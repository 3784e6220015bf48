/** Starts a real hub on an ephemeral port for a test (trackers: support/live.ts's `connectTracker`). */
import { loadConfig } from '../../src/config';
import { type Hub, startHub } from '../../src/server';
import { assertMatchesOpenApi } from './openapi';

export const API_KEY = 'test-api-key-0001';
export const JWT_SECRET = 'test-jwt-secret-0001';
export const CHROME_UA =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.91 Safari/537.36';

export async function startTestHub(env: Record<string, string> = {}): Promise<Hub> {
  const config = loadConfig({
    LISTEN_HOST: '127.0.0.1',
    LISTEN_PORT: '0',
    HUB_API_KEYS: `${API_KEY}:*`,
    ASSIST_JWT_SECRET: JWT_SECRET,
    LOG_LEVEL: 'silent',
    ...env,
  });
  return startHub(config);
}

/**
 * A hub for the enclosing describe block: started before its tests, shut down after them. Call it
 * in the block's body; the getter returns the running hub.
 */
export function sharedTestHub(env: Record<string, string> = {}): () => Hub {
  let hub: Hub | undefined;
  beforeAll(async () => {
    hub = await startTestHub(env);
  });
  afterAll(async () => {
    await hub?.shutdown();
  });
  return () => {
    if (hub === undefined) throw new Error('the shared test hub is not running');
    return hub;
  };
}

/** A 20-character project key from a short name (letters/digits only: `-` separates peerId parts). */
export function projectKey(name: string): string {
  return `${name.replace(/[^A-Za-z0-9]/g, '')}${'0'.repeat(20)}`.slice(0, 20);
}

/**
 * The REST search equal to a subscription's query: its projectKey goes in the path and `resume` is
 * the subscription's own (the public API refuses fields it does not know).
 */
export async function restSearch(hub: Hub, project: string, query: unknown): Promise<{ status: number; json: unknown }> {
  const body = typeof query === 'object' && query !== null ? { ...(query as Record<string, unknown>) } : query;
  if (typeof body === 'object' && body !== null) {
    delete (body as Record<string, unknown>).projectKey;
    delete (body as Record<string, unknown>).resume;
  }
  const res = await fetch(`${hub.url}/api/v1/${project}/assist/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: API_KEY },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  const json: unknown = JSON.parse(text);
  // Checked against the OpenAPI document like every answer of support/http.ts's `call`.
  assertMatchesOpenApi({ method: 'POST', url: `/api/v1/${project}/assist/sessions`, status: res.status, contentType: res.headers.get('content-type'), json, text });
  return { status: res.status, json };
}
