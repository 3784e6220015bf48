/**
 * Hardening of the /dashboard namespace (issue 12): no stale diff after a snapshot, resumes and
 * acks bounded, fair quotas between credentials, JWT expiry and takeovers.
 */
import jwt from 'jsonwebtoken';
import { io, type Socket } from 'socket.io-client';
import { pendingBytes } from '../src/live/dashboard';
import type { SessionsDiff, SubscribeAck } from '../src/protocol';
import type { Hub } from '../src/server';
import { API_KEY, JWT_SECRET, projectKey, startTestHub } from './support/hub';
import { connectTracker } from './support/live';
import { eventually, orAfter, pause } from './support/wait';

const OTHER_KEY = 'other-api-key-0002';

function rawDashboard(hub: Hub, token: unknown): Socket {
  return io(`${hub.url}/dashboard`, { path: '/ws-assist/socket', transports: ['websocket'], forceNew: true, reconnection: false, auth: { token } });
}

async function connected(socket: Socket): Promise<Socket> {
  if (socket.connected) return socket;
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', (err) => reject(err));
  });
  return socket;
}

const ask = (s: Socket, body: unknown, timeoutMs = 5000) => s.timeout(timeoutMs).emitWithAck('subscribe', body) as Promise<SubscribeAck>;

/** Stops reading the socket's TCP stream (the hub's writes to it queue up), keeps writing. */
function pauseReading(s: Socket): () => void {
  const tcp = (s.io.engine.transport as unknown as { ws?: { _socket?: { pause(): void; resume(): void } } }).ws?._socket;
  if (!tcp) throw new Error('no TCP socket under the client');
  tcp.pause();
  return () => tcp.resume();
}

/** The hub's side of a dashboard client socket. */
function serverSide(hub: Hub, s: Socket) {
  const found = hub.io.of('/dashboard').sockets.get(s.id ?? '');
  if (!found) throw new Error('no server socket');
  return found;
}

describe('dashboard hardening', () => {
  let hub: Hub;
  const closers: (() => void)[] = [];
  const track = <T extends { close(): unknown }>(x: T): T => {
    closers.push(() => void x.close());
    return x;
  };

  beforeAll(async () => {
    hub = await startTestHub({
      HUB_API_KEYS: `${API_KEY}:*;${OTHER_KEY}:*`,
      DASHBOARD_DIFF_WINDOW_MS: '60',
      DASHBOARD_MAX_SUBSCRIPTIONS_PER_SOCKET: '3',
      DASHBOARD_MAX_SUBSCRIPTIONS_PER_PROJECT: '8',
      DASHBOARD_MAX_SUBSCRIPTIONS_PER_CREDENTIAL: '5',
      DASHBOARD_BUFFER_BYTES: '65536',
    });
  });
  afterEach(() => {
    while (closers.length) closers.pop()?.();
  });
  afterAll(async () => {
    await hub.shutdown();
  });

  test('a new subscription never receives a diff older than its snapshot (cohort with pending changes, under load)', async () => {
    const project = projectKey('stale');
    const base = track(await connected(rawDashboard(hub, API_KEY)));
    expect(await ask(base, { projectKey: project })).toMatchObject({ ok: true });
    // Load: a tracker keeps changing the cohort while newcomers subscribe.
    const busy = track((await connectTracker(hub, { minimalInfo: true, projectKey: project, sessionId: '900', tabId: 'tab1', info: { userID: 'busy' } })).socket);
    let n = 0;
    const churn = setInterval(() => busy.emit('UPDATE_SESSION', { meta: { tabId: 'tab1' }, data: { userID: `busy${n++}` } }), 3);
    const problems: string[] = [];
    try {
      for (let i = 0; i < 12; i++) {
        // A change the window has not sent yet: the cohort is dirty when the newcomer subscribes.
        track((await connectTracker(hub, { minimalInfo: true, projectKey: project, sessionId: String(1000 + i), tabId: 'tab1', info: { userID: `u${i}` } })).socket);
        const s = track(rawDashboard(hub, API_KEY));
        const diffs: SessionsDiff[] = [];
        s.on('sessions:diff', (d: SessionsDiff) => diffs.push(d));
        await connected(s);
        const ack = await ask(s, { projectKey: project });
        if (!ack.ok) throw new Error(JSON.stringify(ack));
        await pause(100);
        diffs.forEach((d, k) => {
          if (d.seq !== ack.seq + 1 + k) problems.push(`newcomer ${i}: ack seq ${ack.seq}, diff #${k} seq ${d.seq}`);
        });
        await s.timeout(5000).emitWithAck('unsubscribe', { subscriptionId: ack.subscriptionId });
      }
    } finally {
      clearInterval(churn);
    }
    expect(problems).toEqual([]);
  });

  test('a malformed resume seq is refused and changes nothing', async () => {
    const project = projectKey('badseq');
    const s = track(await connected(rawDashboard(hub, API_KEY)));
    const first = await ask(s, { projectKey: project });
    if (!first.ok) throw new Error(JSON.stringify(first));
    for (const seq of [-1, 1.5, Number.MAX_SAFE_INTEGER + 2, '3', null]) {
      expect(await ask(s, { projectKey: project, resume: { subscriptionId: first.subscriptionId, seq } })).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
    }
    expect(await ask(s, { projectKey: project, resume: 'nope' })).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
    expect(hub.ctx.metrics).toBeDefined();
  });

  test('resumes from a dashboard that does not read are bounded by its buffer', async () => {
    const project = projectKey('paused');
    const big = 'x'.repeat(3000);
    for (let i = 0; i < 100; i++) track((await connectTracker(hub, { minimalInfo: true, projectKey: project, sessionId: String(2000 + i), tabId: 'tab1', info: { userID: `user${i}`, metadata: { blob: big } } })).socket);
    const s = track(await connected(rawDashboard(hub, API_KEY)));
    const first = await ask(s, { projectKey: project, limit: 100 });
    if (!first.ok) throw new Error(JSON.stringify(first));
    const snapshotBytes = JSON.stringify(first).length;
    expect(snapshotBytes).toBeGreaterThan(300_000);
    const resumeReading = pauseReading(s);
    const server = serverSide(hub, s);
    let peak = 0;
    const watch = setInterval(() => (peak = Math.max(peak, pendingBytes(server))), 5);
    // A seq ahead of the hub's cannot be resumed: each answer is a full snapshot.
    for (let i = 0; i < 80; i++) s.emit('subscribe', { projectKey: project, limit: 100, resume: { subscriptionId: first.subscriptionId, seq: 999 } }, () => undefined);
    await pause(1500);
    clearInterval(watch);
    peak = Math.max(peak, pendingBytes(server));
    resumeReading();
    // The bound (64 KiB) plus a few snapshots in flight, not eighty of them.
    expect(peak).toBeLessThan(65536 + 4 * snapshotBytes);
  });

  test('quotas are per credential, and detached subscriptions give way to live ones', async () => {
    const project = projectKey('quota');
    // One credential fills its own quota (5) with two sockets, then leaves.
    const a1 = rawDashboard(hub, API_KEY);
    const a2 = rawDashboard(hub, API_KEY);
    await Promise.all([connected(a1), connected(a2)]);
    for (let i = 0; i < 3; i++) expect(await ask(a1, { projectKey: project, limit: i + 1 })).toMatchObject({ ok: true });
    for (let i = 0; i < 2; i++) expect(await ask(a2, { projectKey: project, limit: i + 10 })).toMatchObject({ ok: true });
    const a3 = track(await connected(rawDashboard(hub, API_KEY)));
    expect(await ask(a3, { projectKey: project })).toMatchObject({ ok: false, error: { code: 'TOO_MANY_SUBSCRIPTIONS' } });
    // Another credential still gets its share of the project (8).
    const b = track(await connected(rawDashboard(hub, OTHER_KEY)));
    for (let i = 0; i < 3; i++) expect(await ask(b, { projectKey: project, limit: i + 1 })).toMatchObject({ ok: true });
    // The project is full (8), but the first credential's subscriptions are detached: they give way.
    a1.close();
    a2.close();
    await eventually(() => hub.ctx.metrics !== undefined && hub.io.of('/dashboard').sockets.size <= 2);
    await pause(50);
    const b2 = track(await connected(rawDashboard(hub, OTHER_KEY)));
    for (let i = 0; i < 2; i++) expect(await ask(b2, { projectKey: project, limit: i + 20 })).toMatchObject({ ok: true });
    expect(await ask(a3, { projectKey: project })).toMatchObject({ ok: true });
  });

  test('only the same credential may resume a subscription, and the old holder is told', async () => {
    const project = projectKey('takeover');
    const holder = track(await connected(rawDashboard(hub, API_KEY)));
    const told: unknown[] = [];
    holder.on('sessions:revoked', (m: unknown) => told.push(m));
    const sub = await ask(holder, { projectKey: project });
    if (!sub.ok) throw new Error(JSON.stringify(sub));
    // Another credential naming the id gets a subscription of its own, not this one.
    const thief = track(await connected(rawDashboard(hub, OTHER_KEY)));
    const stolen = await ask(thief, { projectKey: project, resume: { subscriptionId: sub.subscriptionId, seq: sub.seq } });
    expect(stolen).toMatchObject({ ok: true });
    expect(stolen.ok && stolen.subscriptionId).not.toBe(sub.subscriptionId);
    await pause(100);
    expect(told).toEqual([]);
    // The same credential from another socket takes it over; the holder is told it moved.
    const heir = track(await connected(rawDashboard(hub, API_KEY)));
    const resumed = await ask(heir, { projectKey: project, resume: { subscriptionId: sub.subscriptionId, seq: sub.seq } });
    expect(resumed).toMatchObject({ ok: true, subscriptionId: sub.subscriptionId, resumed: true });
    await eventually(() => told.length === 1, () => JSON.stringify(told));
    expect(told[0]).toMatchObject({ subscriptionId: sub.subscriptionId, code: 'SUBSCRIPTION_TAKEN_OVER' });
  });

  test('a dashboard JWT is disconnected at its exp', async () => {
    const project = projectKey('expiry');
    const token = jwt.sign({ projectKey: project, exp: Math.floor(Date.now() / 1000) + 2 }, JWT_SECRET, { algorithm: 'HS256' });
    const s = track(await connected(rawDashboard(hub, token)));
    const errors: unknown[] = [];
    s.on('error', (e: unknown) => errors.push(e));
    const gone = new Promise<string>((resolve) => s.once('disconnect', (reason) => resolve(reason)));
    expect(await ask(s, { projectKey: project })).toMatchObject({ ok: true });
    expect(await orAfter(gone, 4000, 'still connected')).toBe('io server disconnect');
    expect(errors).toEqual([expect.objectContaining({ code: 'TOKEN_EXPIRED' })]);
  });
});
