/** /dashboard namespace: auth, refusals, snapshot + diffs, windowed results, resume, slow consumers. */
import jwt from 'jsonwebtoken';
import { io, type Socket } from 'socket.io-client';
import { DashboardClient, SubscribeError } from '../src/client/dashboardClient';
import { pendingBytes } from '../src/live/dashboard';
import type { SessionsDiff, SubscribeAck } from '../src/protocol';
import type { Hub } from '../src/server';
import { API_KEY, JWT_SECRET, projectKey, restSearch, startTestHub } from './support/hub';
import { connectTracker } from './support/live';
import { eventually, pause } from './support/wait';

const P1 = projectKey('dash1');
const P2 = projectKey('dash2');

function rawDashboard(hub: Hub, token: unknown): Socket {
  return io(`${hub.url}/dashboard`, { path: '/ws-assist/socket', transports: ['websocket'], forceNew: true, reconnection: false, auth: { token } });
}

function connectError(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    socket.once('connect', () => reject(new Error('connected, expected a refusal')));
    socket.once('connect_error', (err) => resolve(err.message));
  });
}

async function viewEqualsRest(hub: Hub, client: { view: { total: number; list(): unknown[] } }, query: Record<string, unknown>): Promise<void> {
  let last = '';
  await eventually(
    async () => {
      const rest = JSON.stringify((await restSearch(hub, query.projectKey as string, query)).json);
      const view = JSON.stringify({ data: { total: client.view.total, sessions: client.view.list() } });
      last = `view ${view}\nrest ${rest}`;
      return rest === view;
    },
    () => last,
  );
}

describe('/dashboard', () => {
  let hub: Hub;
  const closers: (() => void)[] = [];

  beforeAll(async () => {
    hub = await startTestHub({
      HUB_API_KEYS: `${API_KEY}:*;limited-key-0001:${P1}`,
      DASHBOARD_DIFF_WINDOW_MS: '20',
      DASHBOARD_MAX_SUBSCRIPTIONS_PER_SOCKET: '3',
      DASHBOARD_HISTORY_SIZE: '4',
    });
  });
  afterEach(() => {
    while (closers.length) closers.pop()?.();
  });
  afterAll(async () => {
    await hub.shutdown();
  });

  const client = async (token = API_KEY) => {
    const c = new DashboardClient({ url: hub.url, token });
    closers.push(() => c.close());
    await c.connected();
    return c;
  };
  const tracker = async (project: string, sessionId: string, info: Record<string, unknown> = {}, tabId = 'tab1') => {
    const s = (await connectTracker(hub, { minimalInfo: true, projectKey: project, sessionId, tabId, info })).socket;
    closers.push(() => s.close());
    return s;
  };

  describe('auth and refusals', () => {
    test('a missing or unknown token is refused', async () => {
      expect(await connectError(rawDashboard(hub, undefined))).toMatch(/Authentication error/);
      expect(await connectError(rawDashboard(hub, 'not-a-key-at-all'))).toMatch(/Authentication error/);
      const expired = jwt.sign({ projectKey: P1, exp: Math.floor(Date.now() / 1000) - 10 }, JWT_SECRET, { algorithm: 'HS256' });
      expect(await connectError(rawDashboard(hub, expired))).toMatch(/Authentication error/);
      const otherSecret = jwt.sign({ projectKey: P1 }, 'another-secret-000', { algorithm: 'HS256' });
      expect(await connectError(rawDashboard(hub, otherSecret))).toMatch(/Authentication error/);
    });

    test('a JWT with a projectKey claim may subscribe to that project only', async () => {
      const token = jwt.sign({ projectKey: P1 }, JWT_SECRET, { algorithm: 'HS256', expiresIn: 60 });
      const c = await client(token);
      const sub = await c.subscribe({ projectKey: P1 });
      expect(sub.view.total).toBeGreaterThanOrEqual(0);
      await expect(c.subscribe({ projectKey: P2 })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    });

    test('an API key not granted the project is refused', async () => {
      const c = await client('limited-key-0001');
      await expect(c.subscribe({ projectKey: P1 })).resolves.toBeDefined();
      await expect(c.subscribe({ projectKey: P2 })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    });

    test('bad filters, bad limits and too many subscriptions are refused with a code and a message', async () => {
      const s = rawDashboard(hub, API_KEY);
      closers.push(() => s.close());
      await new Promise<void>((r) => s.once('connect', () => r()));
      const ask = (body: unknown) => s.timeout(5000).emitWithAck('subscribe', body) as Promise<SubscribeAck>;
      const badType = await ask({ projectKey: P1, filters: [{ type: 'NOPE', value: ['x'] }] });
      expect(badType).toMatchObject({ ok: false, error: { code: 'INVALID_FILTER' } });
      expect(!badType.ok && badType.error.message).toMatch(/filters\.0\.type/);
      const badLimit = await ask({ projectKey: P1, limit: 0 });
      expect(badLimit).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
      expect(!badLimit.ok && badLimit.error.message).toMatch(/limit/);
      expect(await ask('nope')).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
      expect(await ask({ filters: [] })).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
      for (let i = 0; i < 3; i++) expect(await ask({ projectKey: P1, limit: i + 1 })).toMatchObject({ ok: true });
      expect(await ask({ projectKey: P1 })).toMatchObject({ ok: false, error: { code: 'TOO_MANY_SUBSCRIPTIONS' } });
      expect(() => new DashboardClient({ url: hub.url, token: API_KEY }).close()).not.toThrow();
      expect(SubscribeError).toBeDefined();
    });
  });

  describe('snapshot and diffs', () => {
    test('snapshot equals REST; added, updated and removed arrive in seq order', async () => {
      const project = projectKey('snap');
      await tracker(project, 's1', { userID: 'ann', timestamp: 1000, metadata: { plan: 'pro' } });
      const c = await client();
      const query = { projectKey: project, filters: [{ type: 'METADATA', source: 'plan', operator: 'is', value: ['pro'] }] };
      const sub = await c.subscribe(query);
      expect(sub.view.list().map((s) => s.sessionID)).toEqual(['s1']);
      const diffs: SessionsDiff[] = [];
      c.socket.on('sessions:diff', (d: SessionsDiff) => diffs.push(d));

      const t2 = await tracker(project, 's2', { userID: 'bob', timestamp: 2000, metadata: { plan: 'pro' } });
      await eventually(() => diffs.length >= 1, () => JSON.stringify(diffs));
      expect(diffs[0]).toMatchObject({ seq: 1, total: 2, removed: [], updated: [] });
      expect(diffs[0]?.added.map((s) => s.sessionID)).toEqual(['s2']);

      t2.emit('UPDATE_SESSION', { meta: { tabId: 'tab1' }, data: { userID: 'bobby' } });
      await eventually(() => diffs.length >= 2, () => JSON.stringify(diffs));
      expect(diffs[1]).toMatchObject({ seq: 2, total: 2, added: [], removed: [] });
      expect(diffs[1]?.updated[0]).toMatchObject({ sessionID: 's2', userID: 'bobby' });

      // No longer matching: removed.
      t2.emit('UPDATE_SESSION', { meta: { tabId: 'tab1' }, data: { metadata: { plan: 'free' } } });
      await eventually(() => diffs.length >= 3, () => JSON.stringify(diffs));
      expect(diffs[2]).toMatchObject({ seq: 3, total: 1, added: [], updated: [], removed: ['s2'] });
      await viewEqualsRest(hub, sub, query);
    });

    test('a burst within the window is coalesced into one diff, and no empty diff is sent', async () => {
      const project = projectKey('burst');
      const t = await tracker(project, 'b1', { userID: 'u0' });
      const c = await client();
      await c.subscribe({ projectKey: project });
      const diffs: SessionsDiff[] = [];
      c.socket.on('sessions:diff', (d: SessionsDiff) => diffs.push(d));
      for (let i = 1; i <= 20; i++) t.emit('UPDATE_SESSION', { meta: { tabId: 'tab1' }, data: { userID: `u${i}` } });
      await eventually(() => diffs.some((d) => d.updated[0]?.userID === 'u20'), () => JSON.stringify(diffs));
      expect(diffs.length).toBeLessThan(20);
      // A change that does not alter the view ({}) sends nothing.
      const before = diffs.length;
      t.emit('UPDATE_SESSION', { meta: { tabId: 'tab1' }, data: {} });
      await pause(150);
      for (const d of diffs) expect(d.added.length + d.updated.length + d.removed.length).toBeGreaterThan(0);
      expect(diffs.length - before).toBeLessThanOrEqual(1);
    });

    test('with a limit the view stays the first page of the REST search, total included', async () => {
      const project = projectKey('window');
      const sockets = [];
      for (let i = 0; i < 5; i++) sockets.push(await tracker(project, `w${i}`, { timestamp: 1000 + i, userID: `user${i}` }));
      const c = await client();
      const query = { projectKey: project, sort: 'timestamp', order: 'DESC', limit: 2 };
      const sub = await c.subscribe(query);
      expect(sub.view.list().map((s) => s.sessionID)).toEqual(['w4', 'w3']);
      expect(sub.view.total).toBe(5);
      sockets[4]?.close(); // the newest leaves: w2 moves into the window
      await eventually(() => sub.view.list().map((s) => s.sessionID).join() === 'w3,w2', () => JSON.stringify(sub.view.list()));
      expect(sub.view.total).toBe(4);
      await tracker(project, 'w9', { timestamp: 5000 }); // a newer one pushes w2 out
      await eventually(() => sub.view.list().map((s) => s.sessionID).join() === 'w9,w3', () => JSON.stringify(sub.view.list()));
      await viewEqualsRest(hub, sub, query);
      const asc = await c.subscribe({ projectKey: project, sort: 'userID', order: 'ASC', limit: 3 });
      expect(asc.view.list().map((s) => s.userID)).toEqual(['user0', 'user1', 'user2']);
    });

    test('sorted by a metadata value: an update that changes the value moves the session, as REST orders it', async () => {
      const project = projectKey('metasort');
      const tabs = [];
      for (const [id, plan] of [['m1', 'b'], ['m2', 'c'], ['m3', 'a']] as const) tabs.push(await tracker(project, id, { metadata: { plan } }));
      const c = await client();
      const query = { projectKey: project, sort: 'metadata.plan', order: 'ASC', limit: 2 };
      const sub = await c.subscribe(query);
      expect(sub.view.list().map((s) => s.sessionID)).toEqual(['m3', 'm1']);
      tabs[1]?.emit('UPDATE_SESSION', { meta: { tabId: 'tab1' }, data: { metadata: { plan: '0' } } });
      await eventually(() => sub.view.list().map((s) => s.sessionID).join() === 'm2,m3', () => JSON.stringify(sub.view.list()));
      await viewEqualsRest(hub, sub, query);
    });
  });

  describe('resume', () => {
    test('a dashboard that reconnects gets exactly the diffs it missed', async () => {
      const project = projectKey('resume');
      const t = await tracker(project, 'r1', { userID: 'a' });
      const c = await client();
      const query = { projectKey: project };
      const sub = await c.subscribe(query);
      t.emit('UPDATE_SESSION', { meta: { tabId: 'tab1' }, data: { userID: 'b' } });
      await eventually(() => sub.view.seq === 1, () => `seq ${sub.view.seq}`);
      // Cut the connection under the client: it reconnects by itself and resumes.
      c.socket.io.engine.close();
      t.emit('UPDATE_SESSION', { meta: { tabId: 'tab1' }, data: { userID: 'c' } });
      await tracker(project, 'r2', { userID: 'z' });
      await eventually(() => sub.view.seq >= 2 && sub.stats.resumes >= 1, () => `seq ${sub.view.seq} ${JSON.stringify(sub.stats)}`);
      await viewEqualsRest(hub, sub, query);
      expect(sub.stats.resyncs).toBe(0);
      expect(sub.stats.gaps).toBe(0);
    });

    test('past the history bound the resume is answered with a fresh snapshot marked resync', async () => {
      const project = projectKey('resync');
      const t = await tracker(project, 'x1', { userID: 'a' });
      const c = await client();
      const query = { projectKey: project };
      const sub = await c.subscribe(query);
      const seqBefore = sub.view.seq;
      c.socket.disconnect(); // the client will not reconnect by itself after a manual disconnect
      for (let i = 0; i < 8; i++) {
        t.emit('UPDATE_SESSION', { meta: { tabId: 'tab1' }, data: { userID: `v${i}` } });
        await pause(40); // > diff window: one diff each, more than the history holds
      }
      const raw = rawDashboard(hub, API_KEY);
      closers.push(() => raw.close());
      await new Promise<void>((r) => raw.once('connect', () => r()));
      const ack = (await raw.timeout(5000).emitWithAck('subscribe', { ...query, resume: { subscriptionId: sub.subscriptionId, seq: seqBefore } })) as SubscribeAck;
      expect(ack).toMatchObject({ ok: true, resync: true, subscriptionId: sub.subscriptionId });
      const rest = (await restSearch(hub, project, query)).json as { data: { total: number; sessions: unknown[] } };
      expect(ack.ok && { total: ack.total, sessions: ack.sessions }).toEqual(rest.data);
    });

    test('an unknown subscription id gets a fresh subscription marked resync', async () => {
      const raw = rawDashboard(hub, API_KEY);
      closers.push(() => raw.close());
      await new Promise<void>((r) => raw.once('connect', () => r()));
      const ack = (await raw.timeout(5000).emitWithAck('subscribe', { projectKey: P1, resume: { subscriptionId: 'gone', seq: 3 } })) as SubscribeAck;
      expect(ack).toMatchObject({ ok: true, resync: true, seq: 0 });
      expect(ack.ok && ack.subscriptionId).not.toBe('gone');
    });
  });

  describe('slow consumers', () => {
    test('a dashboard that stops reading is reset to resync, its buffer stays bounded, others keep receiving', async () => {
      const slowHub = await startTestHub({ DASHBOARD_DIFF_WINDOW_MS: '5', DASHBOARD_BUFFER_BYTES: '65536' });
      const project = projectKey('slow');
      const socketsToClose: { close(): void }[] = [];
      try {
        const tabs: Socket[] = [];
        for (let i = 0; i < 40; i++) {
          const s = (await connectTracker(slowHub, { minimalInfo: true, projectKey: project, sessionId: `slow${i}`, tabId: 't', info: { userID: `u${i}` } })).socket;
          socketsToClose.push(s);
          tabs.push(s);
        }
        const slow = new DashboardClient({ url: slowHub.url, token: API_KEY });
        const fast = new DashboardClient({ url: slowHub.url, token: API_KEY });
        socketsToClose.push(slow, fast);
        await Promise.all([slow.connected(), fast.connected()]);
        const query = { projectKey: project, limit: 200 };
        const slowSub = await slow.subscribe(query);
        const fastSub = await fast.subscribe(query);
        // Stop reading: the TCP socket under the slow client's WebSocket is paused.
        const transport = slow.socket.io.engine.transport as unknown as { ws: { _socket: { pause(): void; resume(): void } } };
        transport.ws._socket.pause();

        const serverSlow = [...slowHub.io.of('/dashboard').sockets.values()].find((s) => s.id === slow.socket.id);
        expect(serverSlow).toBeDefined();
        const big = 'x'.repeat(4000);
        let maxPending = 0;
        let round = 0;
        const resyncs = () => slowHub.ctx.metrics.resyncs.get().then((m) => m.values.filter((v) => v.labels.reason === 'slow_consumer').reduce((n, v) => n + v.value, 0));
        await eventually(
          async () => {
            round++;
            for (const [i, t] of tabs.entries()) t.emit('UPDATE_SESSION', { meta: { tabId: 't' }, data: { userID: `u${i}-${round}`, big } });
            await pause(10);
            if (serverSlow) maxPending = Math.max(maxPending, pendingBytes(serverSlow));
            return (await resyncs()) >= 1;
          },
          () => `no slow-consumer reset after ${round} rounds, max pending ${maxPending}`,
          30_000,
          0,
        );
        // Bounded: the bound plus at most one diff (40 sessions x ~4 KB) past it.
        expect(maxPending).toBeLessThan(65536 + 40 * 5000);
        // The fast dashboard kept up meanwhile.
        await viewEqualsRest(slowHub, fastSub, query);
        expect(fastSub.stats.diffs).toBeGreaterThan(0);
        // Reading again: the slow dashboard is told to resync, takes a snapshot and converges.
        transport.ws._socket.resume();
        await eventually(() => slowSub.stats.resyncs >= 1, () => JSON.stringify(slowSub.stats), 15_000);
        await viewEqualsRest(slowHub, slowSub, query);
      } finally {
        for (const s of socketsToClose) s.close();
        await slowHub.shutdown();
      }
    }, 60_000);
  });
});

describe('/dashboard diff window (a throttle: the first change at once, the next ones after the window)', () => {
  const WINDOW_MS = 1500;
  let hub: Hub;
  const closers: (() => void)[] = [];

  beforeAll(async () => {
    hub = await startTestHub({ DASHBOARD_DIFF_WINDOW_MS: String(WINDOW_MS) });
  });
  afterAll(async () => {
    while (closers.length) closers.pop()?.();
    await hub.shutdown();
  });

  test('a quiet cohort sends a change within a turn, and a change right after it waits for the window', async () => {
    const project = projectKey('throttle');
    const tab = (await connectTracker(hub, { minimalInfo: true, projectKey: project, sessionId: 't1', tabId: 'tab1', info: { userID: 'u0' } })).socket;
    closers.push(() => tab.close());
    const c = new DashboardClient({ url: hub.url, token: API_KEY });
    closers.push(() => c.close());
    await c.connected();
    await c.subscribe({ projectKey: project });
    const arrivals: { userID: unknown; at: number }[] = [];
    c.socket.on('sessions:diff', (d: SessionsDiff) => arrivals.push({ userID: d.updated[0]?.userID, at: performance.now() }));

    const sentAt = performance.now();
    tab.emit('UPDATE_SESSION', { meta: { tabId: 'tab1' }, data: { userID: 'u1' } });
    await eventually(() => arrivals.length >= 1);
    // Well within the window: it did not wait for it (the margin is for a slow CI machine).
    expect(arrivals[0]?.userID).toBe('u1');
    expect((arrivals[0]?.at ?? Number.POSITIVE_INFINITY) - sentAt).toBeLessThan(WINDOW_MS / 2);

    tab.emit('UPDATE_SESSION', { meta: { tabId: 'tab1' }, data: { userID: 'u2' } });
    tab.emit('UPDATE_SESSION', { meta: { tabId: 'tab1' }, data: { userID: 'u3' } });
    await eventually(() => arrivals.some((a) => a.userID === 'u3'), () => JSON.stringify(arrivals), WINDOW_MS * 4);
    // One diff for both, a window after the first (sent at once, it would follow within milliseconds).
    expect(arrivals.map((a) => a.userID)).toEqual(['u1', 'u3']);
    expect((arrivals[1]?.at ?? 0) - (arrivals[0]?.at ?? 0)).toBeGreaterThanOrEqual(WINDOW_MS / 2);
  });
});
