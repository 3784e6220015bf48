/**
 * Two hub nodes joined through a real Redis: REST on either node sees every node's sessions, and
 * the room events of the live protocol flow between a tab on one node and agents on the other,
 * both ways, with the same names, arguments and targeting as on a single node. Duplicate tabs are
 * refused across nodes, including when both connect at the same moment.
 */
import Redis from 'ioredis';
import { findTab } from '../src/sessions/sessionIndex';
import type { Hub } from '../src/server';
import { agentAt, idsAt, listAt, startClusterHub } from './support/cluster';
import { API_KEY, type Peer, agentInfo, closeAllPeers, connectTracker, newSessionId, projectKey, trackerPeer } from './support/live';
import { RedisServer } from './support/redis';
import { eventually } from './support/wait';

const PK = projectKey('relay');
const configOf = (name: string) => JSON.stringify({ iceServers: [{ urls: `stun:${name}.stun.test:3478` }] });

let redis: RedisServer;
let a: Hub;
let b: Hub;
let sid: string;

beforeAll(async () => {
  redis = await RedisServer.start();
  a = await startClusterHub(redis.url, 'node-a');
  b = await startClusterHub(redis.url, 'node-b');
});
beforeEach(() => {
  sid = newSessionId();
});
afterEach(closeAllPeers);
afterAll(async () => {
  await Promise.all([a?.shutdown(), b?.shutdown()]);
  await redis?.stop();
});

/** A tab of `sid` on `hub`, once every node's index holds it. */
async function tab(hub: Hub, tabId: string, session = sid): Promise<Peer> {
  const peer = await connectTracker(hub, { projectKey: PK, sessionId: session, tabId });
  await eventually(() => [a, b].every((h) => h.ctx.index.session(PK, session)?.tabIds.includes(tabId)), () => `tab ${tabId} not replicated`, 2_000);
  return peer;
}

/** An agent of `sid` on `hub`, once every node's index holds it. */
async function agent(hub: Hub, name: string, session = sid): Promise<Peer> {
  const peer = await agentAt(hub.url, { projectKey: PK, sessionId: session, name, config: configOf(name) }).connected();
  await eventually(() => [a, b].every((h) => h.ctx.index.room(PK, session)?.agents.has(peer.id)), () => `agent ${name} not replicated`, 2_000);
  return peer;
}

describe('one view', () => {
  test('REST on either node lists, finds and searches every node\u2019s sessions', async () => {
    const onA = newSessionId();
    const onB = newSessionId();
    await connectTracker(a.url, { projectKey: PK, sessionId: onA, info: { userID: 'alice@a.test', metadata: { plan: 'trial' } } });
    await connectTracker(b.url, { projectKey: PK, sessionId: onB, info: { userID: 'bob@b.test', metadata: { plan: 'free' } } });
    for (const hub of [a, b]) {
      await eventually(async () => (await idsAt(hub.url, PK)).join() === [onA, onB].sort().join(), async () => (await idsAt(hub.url, PK)).join(), 2_000);
      const list = await listAt(hub.url, PK);
      expect(list.partial).toBe(false);
      const one = await fetch(`${hub.url}/api/v1/${PK}/assist/sessions/${hub === a ? onB : onA}`, { headers: { authorization: API_KEY } });
      expect(one.status).toBe(200);
      const search = await fetch(`${hub.url}/api/v1/${PK}/assist/sessions`, {
        method: 'POST',
        headers: { authorization: API_KEY, 'content-type': 'application/json' },
        body: JSON.stringify({ filters: [{ type: 'METADATA', source: 'plan', operator: 'is', value: ['trial'] }] }),
      });
      const body = (await search.json()) as { data: { total: number; sessions: { sessionID: string }[] } };
      expect(body.data.sessions.map((s) => s.sessionID)).toEqual([onA]);
      const ready = await fetch(`${hub.url}/ready`);
      expect(await ready.json()).toEqual({ status: 'ready', partial: false });
    }
  });

  test('UPDATE_SESSION on one node: the merged session on the other node, and the agents there get the payload', async () => {
    const t = await tab(b, 'tab1');
    const x = await agent(a, 'alice');
    t.emit('UPDATE_SESSION', { meta: { tabId: 'tab1', version: 2 }, data: { metadata: { plan: 'enterprise' }, pageTitle: 'Checkout' } });
    expect(await x.next('UPDATE_SESSION')).toEqual([{ meta: { tabId: 'tab1', version: 2 }, data: { metadata: { plan: 'enterprise' }, pageTitle: 'Checkout' } }]);
    await eventually(
      async () => (await listAt(a.url, PK)).sessions.some((s) => s.sessionID === sid && s.metadata.plan === 'enterprise' && s.metadata.company === 'acme' && s.pageTitle === 'Checkout'),
      async () => JSON.stringify((await listAt(a.url, PK)).sessions),
      2_000,
    );
  });
});

describe('room events across nodes', () => {
  test('agent joins a tab on another node: WEBRTC_CONFIG to the room, NEW_AGENT to the tab', async () => {
    const t = await tab(b, 'tab1');
    const x = await agentAt(a.url, { projectKey: PK, sessionId: sid, name: 'alice', config: configOf('alice') }).connected();
    expect(await x.next('WEBRTC_CONFIG')).toEqual([configOf('alice')]);
    expect(await t.next('WEBRTC_CONFIG')).toEqual([configOf('alice')]);
    expect(await t.next('NEW_AGENT')).toEqual([x.id, agentInfo('alice')]);
    await Promise.all([x.quietFor('SESSION_DISCONNECTED'), x.quietFor('NEW_AGENT')]);
  });

  test('tab joins a room whose agents are on another node: config and agents to it, SESSION_RECONNECTED to the rest', async () => {
    const t1 = await tab(a, 'tab1');
    const x = await agent(a, 'alice');
    const y = await agent(b, 'bob');
    const t2 = await connectTracker(b.url, { projectKey: PK, sessionId: sid, tabId: 'tab2' });
    expect(await t2.next('WEBRTC_CONFIG')).toEqual([configOf('bob')]);
    expect(await t2.next('AGENTS_CONNECTED')).toEqual([[x.id, y.id]]);
    expect(await t2.next('AGENTS_INFO_CONNECTED')).toEqual([
      [
        { ...agentInfo('alice'), socketId: x.id },
        { ...agentInfo('bob'), socketId: y.id },
      ],
    ]);
    for (const other of [t1, x, y]) expect(await other.next('SESSION_RECONNECTED')).toEqual([t2.id]);
  });

  test('tab -> room: events with their first argument, bare payloads wrapped, no-argument events as meta only', async () => {
    const t = await tab(b, 'tab1');
    const x = await agent(a, 'alice');
    const batch = { meta: { tabId: 'tab1', version: 1 }, data: Array.from({ length: 5_000 }, (_, i) => ({ tp: 12, id: i, text: `node-${i}` })) };
    t.emit('messages', batch, 'ignored-second-argument');
    expect(await x.next('messages')).toEqual([batch]);
    t.emit('videofeed', { streamId: 's1', enabled: true });
    expect(await x.next('videofeed')).toEqual([{ meta: { tabId: 'tab1', version: 1 }, data: { streamId: 's1', enabled: true } }]);
    t.emit('webrtc_canvas_restart');
    expect(await x.next('webrtc_canvas_restart')).toEqual([{ meta: { tabId: 'tab1', version: 1 } }]);
    // Binary payloads (messages_gz) cross nodes intact.
    const gz = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0xff, 0x00]);
    t.emit('messages_gz', { meta: { tabId: 'tab1', version: 1 }, data: gz });
    const [got] = (await x.next('messages_gz')) as [{ data: Buffer }];
    expect(Buffer.from(got.data)).toEqual(gz);
  });

  test('agent -> tab: the tab named by meta.tabId (on either node), else the first tab', async () => {
    const t1 = await tab(b, 'tab1');
    const t2 = await tab(a, 'tab2');
    const x = await agent(a, 'alice');
    const toTab1 = { meta: { tabId: 'tab1' }, data: { x: 1 } };
    x.emit('move', toTab1);
    expect(await t1.next('move')).toEqual([x.id, toTab1]);
    const toTab2 = { meta: { tabId: 'tab2' }, data: { x: 2 } };
    x.emit('move', toTab2);
    expect(await t2.next('move')).toEqual([x.id, toTab2]);
    x.emit('click', { data: 'no tab named' });
    expect(await t1.next('click')).toEqual([x.id, { data: 'no tab named' }]);
    await Promise.all([t2.quietFor('click'), t1.quietFor('move'), t2.quietFor('move')]);
  });

  test('WEBRTC_AGENT_CALL reaches only the named agent, on the other node', async () => {
    const t = await tab(a, 'tab1');
    const x = await agent(a, 'alice');
    const y = await agent(b, 'bob');
    const call = { data: { toAgentId: y.id, offer: 'sdp' } };
    x.emit('WEBRTC_AGENT_CALL', call);
    expect(await y.next('WEBRTC_AGENT_CALL')).toEqual([call]);
    x.emit('WEBRTC_AGENT_CALL', { data: { toAgentId: 'not-in-this-room' } });
    await Promise.all([t.quietFor('WEBRTC_AGENT_CALL'), x.quietFor('WEBRTC_AGENT_CALL'), y.quietFor('WEBRTC_AGENT_CALL')]);
  });

  test('leaves: AGENT_DISCONNECTED and NO_AGENT, then SESSION_DISCONNECTED when the last tab (on the other node) goes', async () => {
    const t1 = await tab(b, 'tab1');
    const t2 = await tab(a, 'tab2');
    const x = await agent(a, 'alice');
    const y = await agent(b, 'bob');
    const yId = y.id;
    await y.close();
    expect(await x.next('AGENT_DISCONNECTED')).toEqual([yId]);
    expect(await t1.next('AGENT_DISCONNECTED')).toEqual([yId]);
    await t1.quietFor('NO_AGENT');
    const xId = x.id;
    await x.close();
    expect(await t1.next('AGENT_DISCONNECTED')).toEqual([xId]);
    expect(await t1.next('NO_AGENT')).toEqual([]);

    const z = await agent(a, 'carol');
    await t2.close();
    await z.quietFor('SESSION_DISCONNECTED');
    await t1.close();
    expect(await z.next('SESSION_DISCONNECTED')).toEqual([]);
    // An agent event with no tab left: the agent is told so.
    await eventually(() => a.ctx.index.session(PK, sid) === undefined, () => 'session still on a', 2_000);
    z.emit('move', { meta: { tabId: 'tab1' } });
    expect(await z.next('SESSION_DISCONNECTED')).toEqual([]);
  });

  test('an agent for a session with no tab on any node gets SESSION_DISCONNECTED', async () => {
    const x = await agentAt(b.url, { projectKey: PK, sessionId: sid, name: 'alice' }).connected();
    expect(await x.next('SESSION_DISCONNECTED')).toEqual([]);
  });
});

describe('duplicate tabs across nodes', () => {
  test('a tabId already connected on another node is refused; the first keeps its place', async () => {
    const first = await tab(a, 'tab1');
    const x = await agent(b, 'alice');
    const dup = trackerPeer(b.url, { projectKey: PK, sessionId: sid, tabId: 'tab1' });
    expect(await dup.next('SESSION_ALREADY_CONNECTED')).toEqual([]);
    expect(await dup.next('disconnect')).toEqual(['io server disconnect']);
    for (const hub of [a, b]) expect(findTab(hub.ctx.index.room(PK, sid), 'tab1')?.socketId).toBe(first.id);
    x.emit('move', { meta: { tabId: 'tab1' } });
    expect(await first.next('move')).toEqual([x.id, { meta: { tabId: 'tab1' } }]);
  });

  test('the same tabId on two nodes at the same moment: one keeps it everywhere, the other is refused', async () => {
    for (let round = 0; round < 5; round++) {
      const session = newSessionId();
      const onA = trackerPeer(a.url, { projectKey: PK, sessionId: session, tabId: 'tab1' });
      const onB = trackerPeer(b.url, { projectKey: PK, sessionId: session, tabId: 'tab1' });
      await Promise.all([onA.connected(), onB.connected()]);
      await eventually(
        () => [onA, onB].filter((p) => p.socket.connected).length === 1,
        () => `round ${round}: both still connected`,
        3_000,
      );
      const winner = onA.socket.connected ? onA : onB;
      const loser = winner === onA ? onB : onA;
      expect(loser.all('SESSION_ALREADY_CONNECTED')).toHaveLength(1);
      await eventually(() => [a, b].every((h) => findTab(h.ctx.index.room(PK, session), 'tab1')?.socketId === winner.id), () => `round ${round}: views differ`, 2_000);
      await winner.close();
      await eventually(() => [a, b].every((h) => h.ctx.index.session(PK, session) === undefined), () => `round ${round}: session left behind`, 2_000);
    }
    // The rounds were true races (both nodes accepted the tab), settled by the store, not by the handshake check.
    const conflicts = await a.ctx.metrics.registry.getSingleMetric('hub_cluster_tab_conflicts_total')?.get();
    expect(conflicts?.values[0]?.value ?? 0).toBeGreaterThan(0);
  });
});

describe('the relay stream (room traffic in Redis)', () => {
  const prefix = 'bounded:';
  const maxBytes = 256 * 1024;
  let c: Hub;
  let d: Hub;
  let admin: Redis;

  beforeAll(async () => {
    const env = { REDIS_PREFIX: prefix, CLUSTER_RELAY_MAX_BYTES: String(maxBytes) };
    c = await startClusterHub(redis.url, 'node-c', env);
    d = await startClusterHub(redis.url, 'node-d', env);
    admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  });
  afterAll(async () => {
    await Promise.all([c?.shutdown(), d?.shutdown()]);
    admin?.disconnect();
  });

  test('stays within CLUSTER_RELAY_MAX_BYTES (MEMORY USAGE) while the events still reach the other node', async () => {
    const t = await connectTracker(d, { projectKey: PK, sessionId: sid, tabId: 'tab1' });
    await eventually(() => c.ctx.index.session(PK, sid)?.tabIds.includes('tab1') === true, () => 'tab not replicated', 2_000);
    const x = await agentAt(c.url, { projectKey: PK, sessionId: sid, name: 'alice', config: configOf('alice') }).connected();
    await eventually(() => d.ctx.index.room(PK, sid)?.agents.has(x.id) === true, () => 'agent not replicated', 2_000);
    // Several times the budget through the stream, far under the entry bound (CLUSTER_RELAY_MAXLEN 10,000).
    const count = 60;
    const text = 'x'.repeat(20_000);
    // One at a time: a reader more than the budget behind would miss what was trimmed (docs/cluster.md).
    for (let i = 0; i < count; i++) {
      t.emit('messages', { meta: { tabId: 'tab1', version: 1 }, data: [{ tp: 12, id: i, text }] });
      const [batch] = (await x.next('messages')) as [{ data: { id: number }[] }];
      expect(batch.data[0]?.id).toBe(i);
    }
    const stream = Number(await admin.call('MEMORY', 'USAGE', `${prefix}relay`, 'SAMPLES', '0'));
    const ledger = Number((await admin.call('MEMORY', 'USAGE', `${prefix}relay:ledger`, 'SAMPLES', '0')) ?? 0);
    expect(stream + ledger).toBeLessThanOrEqual(maxBytes);
    expect(Number(await admin.get(`${prefix}relay:bytes`))).toBeLessThanOrEqual(maxBytes);
    const entries = await admin.xlen(`${prefix}relay`);
    expect(entries).toBeLessThan(count);
    expect(await admin.llen(`${prefix}relay:ledger`)).toBe(entries);
  });
});
