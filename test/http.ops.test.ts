/**
 * Operational routes and headers: /health, /ready, /metrics, /debug/gc and X-Hub-Partial. Against a
 * whole hub where it can show the behaviour, else against the app with a store whose status the test
 * sets.
 */
import { connect as tcpConnect, type Socket as TcpSocket } from 'node:net';
import { io } from 'socket.io-client';
import { SET_BY_SIBLING, createMetrics } from '../src/ops/metrics';
import type { Hub } from '../src/server';
import { startTestHub } from './support/hub';
import { API_KEYS_SPEC, PROJECT_A, type TestApp, addSession, call, errorOf, sessionsPath, startTestApp } from './support/http';
import { connectTracker } from './support/live';

describe('on a whole hub', () => {
  let hub: Hub;

  beforeAll(async () => {
    hub = await startTestHub({ HUB_API_KEYS: API_KEYS_SPEC });
  });

  afterAll(async () => {
    await hub.shutdown();
  });

  it('/health is 200 {status: ok}', async () => {
    const reply = await call(hub.url, '/health', { key: null });
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual({ status: 'ok' });
  });

  it('/ready is 200 once started, with the store’s partial flag', async () => {
    const reply = await call(hub.url, '/ready', { key: null });
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual({ status: 'ready', partial: false });
  });

  it('/metrics counts open files (listed off the event loop), and the count follows new connections', async () => {
    const openFds = async (): Promise<number> => {
      const line = (await call(hub.url, '/metrics', { key: null })).text.split('\n').find((l) => l.startsWith('process_open_fds '));
      return Number(line?.slice('process_open_fds '.length));
    };
    const before = await openFds();
    expect(before).toBeGreaterThan(0);
    const { hostname, port } = new URL(hub.url);
    const sockets = await Promise.all(
      Array.from({ length: 20 }, () => new Promise<TcpSocket>((resolve) => {
        const socket: TcpSocket = tcpConnect(Number(port), hostname, () => resolve(socket));
      })),
    );
    try {
      // This process holds both ends of each connection (the hub runs in it).
      expect(await openFds()).toBeGreaterThanOrEqual(before + 20);
    } finally {
      for (const socket of sockets) socket.destroy();
    }
  });

  it('METRICS_ACTIVE_HANDLES=true: active handles and resources listed once per scrape, totals equal to the sums by type', async () => {
    const withHandles = await startTestHub({ HUB_API_KEYS: API_KEYS_SPEC, METRICS_ACTIVE_HANDLES: 'true' });
    const node = process as NodeJS.Process & { _getActiveHandles: () => unknown[] };
    const handleListings = jest.spyOn(node, '_getActiveHandles');
    const resourceListings = jest.spyOn(process, 'getActiveResourcesInfo');
    try {
      const { text } = await call(withHandles.url, '/metrics', { key: null });
      expect(handleListings).toHaveBeenCalledTimes(1);
      expect(resourceListings).toHaveBeenCalledTimes(1);
      const values = (prefix: string) =>
        text
          .split('\n')
          .filter((line) => line.startsWith(prefix))
          .map((line) => Number(line.slice(line.lastIndexOf(' ') + 1)));
      for (const name of ['nodejs_active_handles', 'nodejs_active_resources']) {
        const byType = values(`${name}{type="`);
        expect(byType.length).toBeGreaterThan(0);
        expect(values(`${name}_total `)).toEqual([byType.reduce((a, b) => a + b, 0)]);
      }
      expect(text).toMatch(/^nodejs_active_handles\{type="Socket"\} [1-9]/m);
    } finally {
      handleListings.mockRestore();
      resourceListings.mockRestore();
      await withHandles.shutdown();
    }
  });

  it('/metrics has request durations labelled by route pattern, never by raw URL', async () => {
    const tracker = (await connectTracker(hub, { minimalInfo: true, projectKey: PROJECT_A, sessionId: '55', tabId: 't' })).socket;
    try {
      expect((await call(hub.url, sessionsPath(PROJECT_A))).status).toBe(200);
      expect((await call(hub.url, sessionsPath(PROJECT_A, '/55'))).status).toBe(200);
      expect((await call(hub.url, sessionsPath(PROJECT_A), { key: null })).status).toBe(401);
      expect((await call(hub.url, '/no/such/route/at-all')).status).toBe(404);
      const reply = await call(hub.url, '/metrics', { key: null });
      expect(reply.status).toBe(200);
      expect(reply.headers.get('content-type')).toMatch(/^text\/plain/);
      const text = reply.text;
      expect(text).toContain('# TYPE hub_http_request_duration_seconds histogram');
      expect(text).toMatch(/hub_http_request_duration_seconds_count\{route="\/api\/v1\/:projectKey\/assist\/sessions",method="GET",status="200"\} [1-9]/);
      expect(text).toMatch(/hub_http_request_duration_seconds_count\{route="\/api\/v1\/:projectKey\/assist\/sessions\/:sessionId",method="GET",status="200"\} [1-9]/);
      expect(text).toMatch(/hub_http_request_duration_seconds_count\{route="\/api\/v1\/:projectKey\/assist\/sessions",method="GET",status="401"\} [1-9]/);
      expect(text).toMatch(/hub_http_request_duration_seconds_count\{route="unmatched",method="GET",status="404"\} [1-9]/);
      expect(text).not.toContain(PROJECT_A);
      expect(text).not.toContain('at-all');
    } finally {
      tracker.disconnect();
    }
  });

  describe('/metrics?name=', () => {
    /** The families of a scrape, in order, by their `# TYPE` lines. */
    const families = (text: string): string[] => text.split('\n').filter((l) => l.startsWith('# TYPE ')).map((l) => l.split(' ')[2] as string);
    /** One family's block (HELP, TYPE and samples) out of a scrape. */
    const block = (text: string, name: string): string => {
      const start = text.indexOf(`# HELP ${name} `);
      const end = text.indexOf('\n# HELP ', start + 1);
      return text.slice(start, end < 0 ? undefined : end).trimEnd();
    };

    it('returns exactly the named families, in the full scrape’s order and format', async () => {
      const tracker = (await connectTracker(hub, { minimalInfo: true, projectKey: PROJECT_A, sessionId: '56', tabId: 't' })).socket;
      try {
        const reply = await call(hub.url, '/metrics?name=hub_diff_sessions&name=hub_connections&name=hub_connects_refused_total&name=hub_connections', { key: null });
        expect(reply.status).toBe(200);
        expect(reply.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
        expect(families(reply.text)).toEqual(['hub_connections', 'hub_connects_refused_total', 'hub_diff_sessions']);
        expect(reply.text).toContain('hub_connections{role="session"} 1');
        const full = (await call(hub.url, '/metrics', { key: null })).text;
        for (const name of ['hub_connections', 'hub_connects_refused_total', 'hub_diff_sessions']) expect(block(reply.text, name)).toBe(block(full, name));
        expect(reply.text.endsWith('\n')).toBe(true);
      } finally {
        tracker.disconnect();
      }
    });

    it('collects what it returns: a default gauge filled by a sibling family is fresh, not the last full scrape’s', async () => {
      const cpu = async (): Promise<number> => {
        const text = (await call(hub.url, '/metrics?name=process_cpu_seconds_total', { key: null })).text;
        expect(families(text)).toEqual(['process_cpu_seconds_total']);
        return Number(/^process_cpu_seconds_total (\S+)$/m.exec(text)?.[1]);
      };
      const before = await cpu();
      const until = performance.now() + 100;
      while (performance.now() < until) {
        // burn CPU in this process, which is the hub's
      }
      expect(await cpu()).toBeGreaterThan(before);
    });

    it('every family named is the full scrape; other parameters are ignored', async () => {
      const full = (await call(hub.url, '/metrics', { key: null })).text;
      const all = families(full);
      expect(all.length).toBeGreaterThan(20);
      const named = (await call(hub.url, `/metrics?${all.map((name) => `name=${name}`).join('&')}`, { key: null })).text;
      const withOther = (await call(hub.url, '/metrics?module=hub&collect%5B%5D=x', { key: null })).text;
      const comments = (text: string): string[] => text.split('\n').filter((l) => l.startsWith('#'));
      expect(comments(named)).toEqual(comments(full));
      expect(comments(withOther)).toEqual(comments(full));
    });

    it('knows every default family that another fills (a prom-client upgrade that adds one fails here)', () => {
      const { registry } = createMetrics();
      const filledElsewhere = registry
        .getMetricsAsArray()
        .filter((metric) => !metric.name.startsWith('hub_') && (metric as { collect?: unknown }).collect === undefined)
        .map((metric) => metric.name)
        // observed as each GC ends, not collected
        .filter((name) => name !== 'nodejs_gc_duration_seconds');
      expect(filledElsewhere.sort()).toEqual(Object.keys(SET_BY_SIBLING).sort());
      for (const sibling of Object.values(SET_BY_SIBLING)) expect(typeof (registry.getSingleMetric(sibling) as { collect?: unknown } | undefined)?.collect).toBe('function');
    });

    it.each([
      ['an unknown family', 'name=hub_connections&name=hub_no_such_metric', /no metric named hub_no_such_metric/],
      ['a sample name, not a family', 'name=hub_diff_sessions_bucket', /no metric named hub_diff_sessions_bucket/],
      ['an empty name', 'name=', /metric name/],
      ['a name with a label selector', 'name=hub_connections%7Brole%3D%22agent%22%7D', /metric name/],
      ['a name too long', `name=${'a'.repeat(201)}`, /metric name/],
      ['too many names', Array.from({ length: 65 }, () => 'name=hub_connections').join('&'), /at most 64/],
    ])('refuses %s with 400 BAD_REQUEST', async (_what, query, message) => {
      const reply = await call(hub.url, `/metrics?${query}`, { key: null });
      expect(reply.status).toBe(400);
      expect(reply.headers.get('content-type')).toMatch(/^application\/json/);
      expect(errorOf(reply).code).toBe('BAD_REQUEST');
      expect(errorOf(reply).message).toMatch(message);
    });
  });

  it('leaves probes and scrapes out of the request durations', async () => {
    for (const path of ['/health', '/ready', '/metrics']) expect((await call(hub.url, path, { key: null })).status).toBe(200);
    const text = (await call(hub.url, '/metrics', { key: null })).text;
    expect(text).not.toMatch(/hub_http_request_duration_seconds_count\{route="\/(health|ready|metrics)"/);
  });

  it('exports known label values at 0 from the start, in snake_case, and hub_build_info', async () => {
    const fresh = await startTestHub();
    try {
      const text = (await call(fresh.url, '/metrics', { key: null })).text;
      for (const series of [
        'hub_connections{role="agent"} 0',
        'hub_connections{role="dashboard"} 0',
        'hub_connects_refused_total{reason="peer_id"} 0',
        'hub_connects_refused_total{reason="duplicate_tab"} 0',
        'hub_connects_refused_total{reason="dashboard_auth"} 0',
        'hub_events_relayed_total{direction="agent_to_tab"} 0',
        'hub_subscription_resyncs_total{reason="slow_consumer"} 0',
      ]) {
        expect(text).toContain(series);
      }
      expect(text).toContain(`hub_build_info{version="0.1.0",node_version="${process.version}"} 1`);
      // Label values are snake_case: no camelCase value anywhere in the hub's own series.
      const hubLines = text.split('\n').filter((l) => l.startsWith('hub_'));
      expect(hubLines.filter((l) => /="[a-z]+[A-Z]/.test(l))).toEqual([]);

      // A refused handshake counts under its snake_case reason.
      const socket = io(fresh.url, { path: '/ws-assist/socket', transports: ['websocket'], reconnection: false, query: { identity: 'session', peerId: 'bad' } });
      await new Promise<void>((resolve) => socket.once('connect_error', () => resolve()));
      socket.close();
      expect((await call(fresh.url, '/metrics', { key: null })).text).toContain('hub_connects_refused_total{reason="peer_id"} 1');
    } finally {
      await fresh.shutdown();
    }
  });
});

describe('OPS_PORT', () => {
  it('serves /metrics and /debug/* on the ops port only; probes on both', async () => {
    const hub = await startTestHub({ OPS_PORT: '0', HUB_DEBUG_GC: 'true' });
    try {
      const opsUrl = hub.opsUrl as string;
      expect(opsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(opsUrl).not.toBe(hub.url);
      expect((await call(opsUrl, '/metrics', { key: null })).text).toContain('hub_build_info');
      expect((await call(opsUrl, '/debug/gc', { method: 'POST', key: null })).status).toBe(200);
      expect((await call(hub.url, '/metrics', { key: null })).status).toBe(404);
      expect((await call(hub.url, '/debug/gc', { method: 'POST', key: null })).status).toBe(404);
      for (const url of [hub.url, opsUrl]) {
        expect((await call(url, '/health', { key: null })).status).toBe(200);
        expect((await call(url, '/ready', { key: null })).status).toBe(200);
      }
      // Not through `call`: the ops port is outside the public API's document.
      expect((await fetch(`${opsUrl}${sessionsPath(PROJECT_A)}`)).status).toBe(404);
    } finally {
      await hub.shutdown();
    }
    // Closed with the hub.
    await expect(fetch(`${hub.opsUrl as string}/health`)).rejects.toThrow();
  });
});

describe('readiness, partial views and debug routes', () => {
  let app: TestApp;

  beforeEach(async () => {
    app = await startTestApp();
    addSession(app.index, PROJECT_A, '1', { userID: 'u1' });
  });

  afterEach(async () => {
    await app.close();
  });

  it('/ready is 503 NOT_READY with the reason while the hub is not ready; /health stays 200', async () => {
    for (const lifecycle of ['starting', 'draining', 'stopped'] as const) {
      app.setLifecycle(lifecycle);
      const reply = await call(app.url, '/ready', { key: null });
      expect(reply.status).toBe(503);
      expect(errorOf(reply)).toEqual({ code: 'NOT_READY', message: `hub is ${lifecycle}` });
      expect((await call(app.url, '/health', { key: null })).status).toBe(200);
    }
  });

  it('/ready is 503 while the store is not ready, with its reason and partial flag', async () => {
    app.store.current = { ready: false, partial: true, reason: 'joining the cluster' };
    const reply = await call(app.url, '/ready', { key: null });
    expect(reply.status).toBe(503);
    expect(reply.json).toMatchObject({ partial: true, error: { code: 'NOT_READY', message: 'joining the cluster' } });
  });

  it('/ready stays 200 on a partial view, and says so', async () => {
    app.store.current = { ready: true, partial: true, reason: 'redis unreachable' };
    const reply = await call(app.url, '/ready', { key: null });
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual({ status: 'ready', partial: true });
  });

  it('marks data responses X-Hub-Partial: true while the view is partial, and only then', async () => {
    const routes = [sessionsPath(PROJECT_A), sessionsPath(PROJECT_A, '/1'), `/api/v1/${PROJECT_A}/assist/autocomplete?type=USERID`];
    for (const path of routes) expect((await call(app.url, path)).headers.get('x-hub-partial')).toBeNull();
    expect((await call(app.url, sessionsPath(PROJECT_A), { body: {} })).headers.get('x-hub-partial')).toBeNull();

    app.store.current = { ready: true, partial: true };
    for (const path of routes) {
      const reply = await call(app.url, path);
      expect([path, reply.status, reply.headers.get('x-hub-partial')]).toEqual([path, 200, 'true']);
    }
    // A cached search body is still marked: the header is per response, not per body.
    expect((await call(app.url, sessionsPath(PROJECT_A), { body: {} })).headers.get('x-hub-partial')).toBe('true');
  });

  it('/debug/gc is absent unless HUB_DEBUG_GC is set', async () => {
    expect((await call(app.url, '/debug/gc', { method: 'POST' })).status).toBe(404);
  });
});

describe('/debug/gc when enabled', () => {
  it('answers POST with memory figures after a GC (when node exposes it)', async () => {
    const app = await startTestApp({ HUB_DEBUG_GC: 'true' });
    try {
      const reply = await call(app.url, '/debug/gc', { method: 'POST', key: null });
      expect(reply.status).toBe(200);
      const body = reply.json as { heapUsed: number; heapTotal: number; external: unknown; arrayBuffers: unknown; rss: number; gc: unknown };
      expect(body.heapUsed).toBeGreaterThan(0);
      expect(body.heapTotal).toBeGreaterThanOrEqual(body.heapUsed);
      expect(typeof body.external).toBe('number');
      expect(typeof body.arrayBuffers).toBe('number');
      expect(body.rss).toBeGreaterThan(0);
      expect(body.gc).toBe(typeof globalThis.gc === 'function');
      expect((await call(app.url, '/debug/gc', { key: null })).status).toBe(404);
    } finally {
      await app.close();
    }
  });
});
