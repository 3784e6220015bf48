/**
 * REST test support: a fetch wrapper that returns status, headers and parsed JSON, and an app-only
 * harness (createHttpApp on a real HTTP server, with a context built from the real pieces) for what a
 * whole hub cannot easily show: a store that is partial or not ready, an index that throws.
 */
import { TurnBudgetQueue } from '../../src/turnBudget';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiKeys } from '../../src/auth';
import { type ClusterStore, LocalStore, type StoreStatus } from '../../src/cluster/store';
import { loadConfig, parseApiKeys } from '../../src/config';
import type { HubContext, Lifecycle } from '../../src/context';
import { createHttpApp } from '../../src/http/app';
import { createLogger } from '../../src/ops/logger';
import { createMetrics } from '../../src/ops/metrics';
import type { JsonObject } from '../../src/sessions/model';
import { DEFAULT_SESSION_DATA_LIMITS } from '../../src/sessions/sessionData';
import { SessionIndex } from '../../src/sessions/sessionIndex';
import { assertMatchesOpenApi } from './openapi';

export const KEY_ALL = 'test-key-all-projects';
/** Allowed for PROJECT_A only. */
export const KEY_A = 'test-key-project-a-only';
export const PROJECT_A = 'projAxxxxxxxxxxxxxxx';
export const PROJECT_B = 'projBxxxxxxxxxxxxxxx';
export const API_KEYS_SPEC = `${KEY_ALL}:*;${KEY_A}:${PROJECT_A}`;

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed body; undefined when it is not JSON. */
  json: unknown;
}

export interface CallOptions {
  method?: string;
  /** Sent as the Authorization header; null sends none. Default KEY_ALL. */
  key?: string | null;
  /** A string is sent as is; anything else as JSON. */
  body?: unknown;
  headers?: Record<string, string>;
}

export async function call(baseUrl: string, path: string, o: CallOptions = {}): Promise<Reply> {
  const headers: Record<string, string> = { ...o.headers };
  const key = o.key === undefined ? KEY_ALL : o.key;
  if (key !== null) headers.authorization = key;
  let body: string | undefined;
  if (o.body !== undefined) {
    body = typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
    headers['content-type'] ??= 'application/json';
  }
  const method = o.method ?? (body === undefined ? 'GET' : 'POST');
  const res = await fetch(`${baseUrl}${path}`, { method, headers, body });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  // Every answer a suite sees is checked against the OpenAPI document the hub serves.
  assertMatchesOpenApi({ method, url: path, status: res.status, contentType: res.headers.get('content-type'), json, text });
  return { status: res.status, headers: res.headers, text, json };
}

export function sessionsPath(projectKey: string, rest = ''): string {
  return `/api/v1/${projectKey}/assist/sessions${rest}`;
}

/** The `{data: {total, sessions}}` of a list or search reply, typed loosely for assertions. */
export function page(reply: Reply): { total: number; sessions: Array<Record<string, unknown>> } {
  const data = (reply.json as { data?: { total: number; sessions: Array<Record<string, unknown>> } } | undefined)?.data;
  if (!data) throw new Error(`not a session page (status ${reply.status}): ${reply.text.slice(0, 300)}`);
  return data;
}

export function errorOf(reply: Reply): { code: string; message: string } {
  const error = (reply.json as { error?: { code: string; message: string } } | undefined)?.error;
  if (!error) throw new Error(`not an error reply (status ${reply.status}): ${reply.text.slice(0, 300)}`);
  return error;
}

/** A store whose status a test sets. */
export class StubStore implements ClusterStore {
  current: StoreStatus = { ready: true, partial: false };
  private readonly local: LocalStore;

  constructor(
    readonly nodeId: string,
    index: SessionIndex,
  ) {
    this.local = new LocalStore(nodeId, index);
  }

  publish: ClusterStore['publish'] = (op) => this.local.publish(op);
  status(): StoreStatus {
    return this.current;
  }
  async start(): Promise<void> {}
  async close(): Promise<void> {}
}

export interface TestApp {
  url: string;
  ctx: HubContext;
  index: SessionIndex;
  store: StubStore;
  setLifecycle(next: Lifecycle): void;
  close(): Promise<void>;
}

export async function startTestApp(env: Record<string, string> = {}): Promise<TestApp> {
  const config = loadConfig({ LOG_LEVEL: 'silent', HUB_API_KEYS: API_KEYS_SPEC, ...env });
  const index = new SessionIndex();
  const store = new StubStore('n1', index);
  let lifecycle: Lifecycle = 'ready';
  const ctx: HubContext = {
    config,
    logger: createLogger('silent'),
    metrics: createMetrics(),
    index,
    store,
    apiKeys: new ApiKeys(parseApiKeys(config.apiKeys ?? '')),
    jwtSecret: 'test-jwt-secret-0001',
    sessionLimits: DEFAULT_SESSION_DATA_LIMITS,
    lifecycle: () => lifecycle,
    // As the hub builds it (server.ts): searches run in turns unless REST_TURN_MS=0.
    restTurns: config.restTurnMs > 0 ? new TurnBudgetQueue(config.restTurnMs, (error) => { throw error; }) : undefined,
  };
  const server: Server = createServer(createHttpApp(ctx));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    ctx,
    index,
    store,
    setLifecycle: (next) => {
      lifecycle = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

let version = 0;

/** Puts a one-tab session straight into the index (what a tracker's connect would publish). */
export function addSession(index: SessionIndex, projectKey: string, sessionId: string, fields: JsonObject = {}, pageTitle = 'page'): void {
  const now = Date.now();
  index.apply({
    type: 'tab:up',
    projectKey,
    sessionId,
    tab: { tabId: 't1', socketId: `s-${sessionId}`, nodeId: 'n1', pageTitle, active: true, connectedAt: now, lastActiveAt: now },
    data: { fields: { sessionID: sessionId, timestamp: now, ...fields }, version: ++version, origin: 'n1' },
  });
}
