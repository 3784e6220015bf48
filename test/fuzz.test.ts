/**
 * Fuzzing the real server (issue 12): random REST requests, handshake queries, event names and
 * payloads, and subscribe requests, against one hub on an ephemeral port. Properties: no 5xx, no
 * crash, every socket refusal carries a code of the catalogue, and a bystander session's REST view
 * and relay are unchanged, and closed sockets leave no session or socket behind. Reproduce with FC_SEED=<seed> npx jest test/fuzz.
 */
import fc from 'fast-check';
import { io, type Socket } from 'socket.io-client';
import { ErrorCode } from '../src/errors';
import type { Hub } from '../src/server';
import { API_KEY, CHROME_UA, WS_PATH, closeAllPeers, connectAgent, connectTracker, projectKey, startLiveHub, type Peer } from './support/live';
import { eventually } from './support/wait';

const SEED = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : 20261130;
const RUNS = process.env.FC_RUNS !== undefined ? Number(process.env.FC_RUNS) : 60;
const options = { seed: SEED, numRuns: RUNS };
const CODES = new Set<string>(Object.values(ErrorCode));

const FUZZ = projectKey('fuzz');
const BYSTANDER = projectKey('bystander');

/** Strings that stress parsers: JSON-ish, prototype keys, huge numbers, control characters. */
const nasty = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom('__proto__', 'constructor', 'prototype', '{"__proto__":{"x":1}}', '[]', 'null', '1e309', '-0', '%', '%ZZ', '\u0000', '\ud800', 'a'.repeat(300), `${FUZZ}-1-tab1`),
  fc.json({ maxDepth: 3 }),
);
/** A lone surrogate cannot go in a URL (encodeURIComponent throws): a limit of the client side, not the hub's. */
const sendable = (v: string): string => v.replace(/[\ud800-\udfff]/g, '?');
const jsonish = fc.oneof(fc.jsonValue({ maxDepth: 4 }), fc.object({ maxDepth: 3 }), nasty);

describe('fuzz against the real server', () => {
  let hub: Hub;
  let bystanderTab: Peer;
  let bystanderAgent: Peer;
  let bystanderView: string;

  const restView = async (project: string): Promise<string> => {
    const res = await fetch(`${hub.url}/api/v1/${project}/assist/sessions`, { headers: { authorization: API_KEY } });
    return JSON.stringify(await res.json());
  };

  beforeAll(async () => {
    hub = await startLiveHub({ REST_RATE_LIMIT: '0', MAX_TABS_PER_SESSION: '5' });
    bystanderTab = await connectTracker(hub, { projectKey: BYSTANDER, sessionId: '424242', tabId: 'tab1', info: { userID: 'bystander' } });
    bystanderAgent = await connectAgent(hub, { projectKey: BYSTANDER, sessionId: '424242' });
    await bystanderTab.next('NEW_AGENT');
    bystanderView = await restView(BYSTANDER);
  });
  afterAll(async () => {
    await closeAllPeers();
    await hub.shutdown();
  });

  test('REST: random paths, query strings and bodies never get a 5xx', async () => {
    const request = fc.record({
      method: fc.constantFrom('GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'OPTIONS'),
      path: fc.oneof(
        fc.constant(`/api/v1/${FUZZ}/assist/sessions`),
        nasty.map((s) => `/api/v1/${FUZZ}/assist/sessions/${encodeURIComponent(sendable(s))}`),
        nasty.map((s) => `/api/v1/${encodeURIComponent(sendable(s))}/assist/sessions`),
        fc.constant(`/api/v1/${FUZZ}/assist/autocomplete`),
        fc.constantFrom('/health', '/ready', '/metrics', '/', '/api', '/api/v1//assist/sessions'),
      ),
      query: fc.dictionary(fc.constantFrom('q', 'type', 'limit', 'page', 'sort', 'order', 'userId', 'source', '__proto__', 'x'), nasty, { maxKeys: 4 }),
      body: fc.option(jsonish, { nil: undefined }),
      auth: fc.constantFrom(API_KEY, `Bearer ${API_KEY}`, '', 'wrong-key-123456'),
    });
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const qs = new URLSearchParams(r.query).toString();
        const hasBody = r.body !== undefined && r.method !== 'GET' && r.method !== 'HEAD';
        const res = await fetch(`${hub.url}${r.path}${qs ? `?${qs}` : ''}`, {
          method: r.method,
          headers: { authorization: r.auth, 'content-type': 'application/json' },
          ...(hasBody ? { body: typeof r.body === 'string' ? r.body : JSON.stringify(r.body) } : {}),
        });
        await res.arrayBuffer();
        expect(res.status).toBeLessThan(500);
      }),
      options,
    );
  });

  test('handshakes: random queries connect or are refused with a code of the catalogue', async () => {
    const query = fc.record({
      identity: fc.constantFrom('session', 'agent', '', 'admin'),
      peerId: fc.oneof(nasty, fc.constant(`${FUZZ}-1000-tab1`), fc.constant(`${FUZZ}-1001`)),
      tabId: nasty,
      sessionInfo: fc.oneof(nasty, jsonish.map((v) => JSON.stringify(v))),
      agentInfo: fc.oneof(nasty, jsonish.map((v) => JSON.stringify(v))),
    });
    await fc.assert(
      fc.asyncProperty(query, fc.option(nasty, { nil: undefined }), async (raw, token) => {
        const q = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, sendable(v)]));
        const socket = io(hub.url, { path: WS_PATH, transports: ['websocket'], forceNew: true, reconnection: false, query: q, auth: token === undefined ? {} : { token }, extraHeaders: { 'user-agent': CHROME_UA } });
        const outcome = await new Promise<{ ok: true } | { ok: false; data: unknown }>((resolve) => {
          socket.once('connect', () => resolve({ ok: true }));
          socket.once('connect_error', (err: Error & { data?: unknown }) => resolve({ ok: false, data: err.data }));
        });
        socket.close();
        if (!outcome.ok) expect(CODES.has((outcome.data as { code?: string } | undefined)?.code ?? '')).toBe(true);
      }),
      { ...options, numRuns: Math.ceil(RUNS / 2) },
    );
    // Nothing is left behind: every fuzz socket is closed, so only the bystander's session is live.
    await eventually(() => hub.ctx.index.size === 1, () => `live sessions: ${hub.ctx.index.size}`);
    expect(hub.io.of('/').sockets.size).toBe(2);
  });

  test('events: random names and payloads from a tab and an agent change nothing for other sessions', async () => {
    const tab = await connectTracker(hub, { projectKey: FUZZ, sessionId: '2000', tabId: 'tab1' });
    const agent = await connectAgent(hub, { projectKey: FUZZ, sessionId: '2000' });
    const before = bystanderAgent.received.length;
    const beforeTab = bystanderTab.received.length;
    const eventName = fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('UPDATE_SESSION', 'WEBRTC_AGENT_CALL', 'SESSION_RECONNECTED', 'NO_AGENT', 'connect', 'error', '__proto__', 'call_end'));
    await fc.assert(
      fc.asyncProperty(eventName, fc.array(jsonish, { maxLength: 3 }), fc.boolean(), async (event, args, fromTab) => {
        const from: Socket = fromTab ? tab.socket : agent.socket;
        if (['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener'].includes(event)) return;
        from.emit(event, ...args);
      }),
      options,
    );
    // The relay still works, and the bystander saw nothing of it.
    tab.emit('fuzz_done', { meta: { tabId: 'tab1' }, data: 1 });
    await agent.next('fuzz_done');
    await eventually(async () => (await fetch(`${hub.url}/health`)).status === 200);
    expect(bystanderAgent.received.length).toBe(before);
    expect(bystanderTab.received.length).toBe(beforeTab);
    expect(await restView(BYSTANDER)).toBe(bystanderView);
    bystanderTab.emit('still_here', { meta: { tabId: 'tab1' }, data: 1 });
    await bystanderAgent.next('still_here');
    await tab.close();
    await agent.close();
    await eventually(() => hub.ctx.index.session(FUZZ, '2000') === undefined);
  });

  test('dashboards: random subscribe and unsubscribe requests are answered ok or with a code of the catalogue', async () => {
    const socket = io(`${hub.url}/dashboard`, { path: WS_PATH, transports: ['websocket'], forceNew: true, reconnection: false, auth: { token: API_KEY } });
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    const request = fc.oneof(
      jsonish,
      fc.record(
        {
          projectKey: fc.oneof(fc.constant(FUZZ), nasty),
          filters: fc.oneof(fc.array(fc.record({ type: fc.constantFrom('USERID', 'METADATA', 'NOPE', ''), operator: nasty, value: fc.array(nasty, { maxLength: 3 }), source: nasty }, { requiredKeys: [] }), { maxLength: 3 }), jsonish),
          sort: fc.oneof(fc.constantFrom('timestamp', 'userID'), nasty),
          order: fc.oneof(fc.constantFrom('ASC', 'DESC'), nasty),
          limit: fc.oneof(fc.integer({ min: -5, max: 300 }), nasty),
          page: fc.oneof(fc.constant(1), jsonish),
          resume: fc.oneof(fc.record({ subscriptionId: nasty, seq: fc.oneof(fc.integer(), fc.double(), nasty) }), jsonish),
        },
        { requiredKeys: ['projectKey'] },
      ),
    );
    await fc.assert(
      fc.asyncProperty(request, fc.boolean(), async (body, unsubscribe) => {
        const ack = (await socket.timeout(5000).emitWithAck(unsubscribe ? 'unsubscribe' : 'subscribe', body)) as { ok: boolean; subscriptionId?: string; error?: { code: string } };
        if (ack.ok) {
          if (!unsubscribe && ack.subscriptionId) await socket.timeout(5000).emitWithAck('unsubscribe', { subscriptionId: ack.subscriptionId });
        } else {
          expect(CODES.has(ack.error?.code ?? '')).toBe(true);
        }
      }),
      options,
    );
    // Every subscription it got was unsubscribed: none is left.
    expect(await (await fetch(`${hub.url}/metrics`)).text()).toMatch(/^hub_subscriptions 0$/m);
    socket.close();
    expect(await restView(BYSTANDER)).toBe(bystanderView);
  });
});
