/**
 * Hardening of the tracker/agent namespace (issue 12): tabs per session bounded, tab leaves that
 * cost nothing to the rest of the room, relays bounded per receiving socket, half-open duplicate
 * tabs replaced, connection cap, and refusals that carry an error code.
 */
import { io } from 'socket.io-client';
import { probeAlive } from '../src/live/backpressure';
import { connectionFits, defaultMaxConnections, effectiveBacklog, readOpenFileLimit, readSomaxconn } from '../src/live/connectionCap';
import type { Hub } from '../src/server';
import { CHROME_UA, WS_PATH, agentToken, closeAllPeers, connectAgent, connectTracker, newSessionId, projectKey, startLiveHub, trackerPeer, type Peer } from './support/live';
import { eventually, pause } from './support/wait';

const PK = projectKey('harden');

/** The `connect_error` data of a raw handshake with this query and auth. */
function refusalData(hub: Hub, query: Record<string, string>, auth: Record<string, unknown> = {}): Promise<unknown> {
  const socket = io(hub.url, { path: WS_PATH, transports: ['websocket'], forceNew: true, reconnection: false, query, auth, extraHeaders: { 'user-agent': CHROME_UA } });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => {
      socket.close();
      reject(new Error('connected, expected a refusal'));
    });
    socket.once('connect_error', (err: Error & { data?: unknown }) => {
      socket.close();
      resolve(err.data);
    });
  });
}

/** Stops reading the peer's TCP stream: what the hub sends it queues up. */
function pauseReading(peer: Peer): () => void {
  const tcp = (peer.socket.io.engine.transport as unknown as { ws?: { _socket?: { pause(): void; resume(): void } } }).ws?._socket;
  if (!tcp) throw new Error('no TCP socket under the client');
  tcp.pause();
  return () => tcp.resume();
}

describe('live hardening', () => {
  let hub: Hub;
  let sid: string;

  beforeAll(async () => {
    hub = await startLiveHub({ MAX_TABS_PER_SESSION: '4', DUPLICATE_TAB_PING_MS: '300', RELAY_BUFFER_BYTES: String(2 * 1024 * 1024), MAX_HTTP_BUFFER_SIZE: String(2 * 1024 * 1024) });
  });
  beforeEach(() => {
    sid = newSessionId();
  });
  afterEach(closeAllPeers);
  afterAll(async () => {
    await hub.shutdown();
  });

  const tab = (tabId: string, session = sid) => connectTracker(hub, { projectKey: PK, sessionId: session, tabId });

  test('tabs per session are bounded: one more is refused with TOO_MANY_TABS, other sessions are not affected', async () => {
    for (let i = 1; i <= 4; i++) await tab(`t${i}`);
    const query = { peerId: `${PK}-${sid}-t5`, identity: 'session', tabId: 't5', sessionInfo: JSON.stringify({ sessionID: sid }) };
    expect(await refusalData(hub, query)).toMatchObject({ code: 'TOO_MANY_TABS' });
    expect(hub.ctx.index.room(PK, sid)?.tabs.length).toBe(4);
    await tab('t1', newSessionId());
  });

  test('a tab leaving a room with no agent still sends NO_AGENT to the others (the contract), once per leave', async () => {
    const tabs = [await tab('a1'), await tab('a2'), await tab('a3')];
    await tabs[2]?.close();
    expect(await tabs[0]?.next('NO_AGENT')).toEqual([]);
    await tabs[1]?.close();
    expect(await tabs[0]?.next('NO_AGENT')).toEqual([]);
    await eventually(() => hub.ctx.index.room(PK, sid)?.tabs.length === 1);
  });

  test('handshake refusals carry a code from the catalogue', async () => {
    expect(await refusalData(hub, { peerId: 'nope', identity: 'session' })).toMatchObject({ code: 'BAD_REQUEST', message: expect.any(String) });
    expect(await refusalData(hub, { peerId: `${PK}-${sid}`, identity: 'agent' }, { token: 'not-a-jwt' })).toMatchObject({ code: 'UNAUTHORIZED' });
    const other = agentToken({ projectKey: projectKey('other'), sessionId: sid });
    expect(await refusalData(hub, { peerId: `${PK}-${sid}`, identity: 'agent' }, { token: other })).toMatchObject({ code: 'FORBIDDEN' });
  });

  test('a receiver that stops reading is disconnected past RELAY_BUFFER_BYTES; the sender and others carry on', async () => {
    const sender = await tab('s1');
    const slow = await tab('s2');
    const agent = await connectAgent(hub, { projectKey: PK, sessionId: sid });
    const slowId = slow.id;
    const resume = pauseReading(slow);
    const chunk = 'x'.repeat(1024 * 1024);
    let agentGot = 0;
    agent.socket.on('dom', () => agentGot++);
    for (let i = 0; i < 24; i++) {
      sender.emit('dom', { meta: { tabId: 's1' }, data: chunk });
      await pause(20);
    }
    await eventually(() => !hub.io.of('/').sockets.has(slowId), () => 'the paused tab is still connected', 5000);
    resume();
    await eventually(() => agentGot === 24, () => `agent got ${agentGot}`, 10_000);
    expect(sender.socket.connected).toBe(true);
    expect(hub.ctx.index.room(PK, sid)?.tabs.map((t) => t.tabId)).toEqual(['s1']);
  });

  test('a tab reloading over a half-open socket replaces it once the holder does not answer a ping', async () => {
    const old = await tab('r1');
    const oldId = old.id;
    pauseReading(old); // the old socket answers nothing any more, as a half-open one
    const again = await tab('r1');
    expect(again.received.map((r) => r.event)).not.toContain('SESSION_ALREADY_CONNECTED');
    await eventually(() => hub.ctx.index.room(PK, sid)?.tabs[0]?.socketId === again.id, () => JSON.stringify(hub.ctx.index.room(PK, sid)?.tabs));
    expect(hub.io.of('/').sockets.has(oldId)).toBe(false);
    await again.quiet('disconnect');
  });

  test('concurrent duplicate handshakes share one probe of the holder (one ping, not one each)', async () => {
    const holder = await tab('p1');
    const socket = hub.io.of('/').sockets.get(holder.id);
    if (!socket) throw new Error('the holder is not on the hub');
    const first = probeAlive(socket, 300);
    expect(probeAlive(socket, 300)).toBe(first);
    expect(await first).toBe(true);
    // Settled: the next duplicate sends a probe of its own.
    expect(probeAlive(socket, 300)).not.toBe(first);
  });

  test('a live holder keeps its place: the newcomer gets SESSION_ALREADY_CONNECTED', async () => {
    const holder = await tab('k1');
    const dup = trackerPeer(hub, { projectKey: PK, sessionId: sid, tabId: 'k1' });
    expect(await dup.next('SESSION_ALREADY_CONNECTED')).toEqual([]);
    expect(hub.ctx.index.room(PK, sid)?.tabs[0]?.socketId).toBe(holder.id);
  });
});

describe('connection cap', () => {
  test('MAX_CONNECTIONS: one more is refused cleanly, counted; REST and /ready keep working', async () => {
    const hub = await startLiveHub({ MAX_CONNECTIONS: '3' });
    try {
      const sid = newSessionId();
      for (let i = 0; i < 3; i++) await connectTracker(hub, { projectKey: PK, sessionId: sid, tabId: `c${i}` });
      const extra = trackerPeer(hub, { projectKey: PK, sessionId: sid, tabId: 'c3' });
      await extra.refused();
      expect((await fetch(`${hub.url}/ready`)).status).toBe(200);
      const metrics = await (await fetch(`${hub.url}/metrics`)).text();
      expect(metrics).toMatch(/hub_connects_refused_total\{reason="max_connections"\} [1-9]/);
      expect(hub.ctx.index.room(PK, sid)?.tabs.length).toBe(3);
    } finally {
      await closeAllPeers();
      await hub.shutdown();
    }
  });

  test('the default cap is the open-file limit less a reserve; the backlog is what the kernel gives', () => {
    expect(defaultMaxConnections(1024)).toBe(960);
    expect(defaultMaxConnections(20_000)).toBe(19_744);
    expect(defaultMaxConnections(undefined)).toBe(0);
    // The backlog the start log reports: what the kernel gives, not what was asked.
    expect(effectiveBacklog(65535, readSomaxconn('4096\n'))).toBe(4096);
    expect(effectiveBacklog(511, readSomaxconn('4096\n'))).toBe(511);
    expect(effectiveBacklog(65535, readSomaxconn('not a number'))).toBe(65535);
    expect(readOpenFileLimit('Limit  Soft Limit Hard Limit Units\nMax open files            1024                 4096                 files\n')).toBe(1024);
    expect(readOpenFileLimit('Max open files unlimited unlimited files')).toBeUndefined();
    expect(connectionFits(5, 0)).toBe(true);
    expect(connectionFits(3, 3)).toBe(false);
  });
});
