/**
 * The Redis store without sockets: several stores (each with its own index, as on separate nodes)
 * against one real Redis. Replication, joining, same-tab races, gaps, dead and evicted nodes, and
 * a Redis restart, checked on the indexes themselves. The local-apply contract runs against both
 * stores, so LocalStore and RedisStore cannot drift on it.
 */
import Redis from 'ioredis';
import { Registry } from 'prom-client';
import { type ClusterMetrics, createClusterMetrics } from '../src/cluster/metrics';
import { clusterKeys, downScript, streamKeys } from '../src/cluster/redisSchema';
import { RedisStore } from '../src/cluster/redisStore';
import { type ClusterStore, LocalStore } from '../src/cluster/store';
import { createLogger } from '../src/ops/logger';
import { SessionIndex, findTab } from '../src/sessions/sessionIndex';
import { HEARTBEAT_MS, NODE_TTL_MS, REMOVAL_BOUND_MS } from './support/cluster';
import { RedisServer } from './support/redis';
import { PROJECT, agentUp, dataOp, makeAgent, makeData, makeTab, tabDown, tabUp } from './support/sessions';
import { eventually, pause, scaled } from './support/wait';

const PREFIX = 'hubtest:';
const keys = clusterKeys(PREFIX);

interface TestNode {
  id: string;
  index: SessionIndex;
  store: RedisStore;
  metrics: ClusterMetrics;
  registry: Registry;
  lost: string[];
}

let redis: RedisServer;
let admin: Redis;
const nodes: TestNode[] = [];

async function startNode(id: string, joinTimeoutMs = 5_000, stream: { maxLen?: number; maxBytes?: number } = {}): Promise<TestNode> {
  const index = new SessionIndex();
  const registry = new Registry();
  const metrics = createClusterMetrics(registry);
  const lost: string[] = [];
  const store = new RedisStore({
    nodeId: id,
    index,
    redisUrl: redis.url,
    keys,
    heartbeatMs: HEARTBEAT_MS,
    nodeTtlMs: NODE_TTL_MS,
    streamMaxLen: stream.maxLen ?? 10_000,
    streamMaxBytes: stream.maxBytes,
    joinTimeoutMs,
    logger: createLogger(process.env.TEST_LOG_LEVEL ?? 'silent', id),
    metrics,
    onTabLost: (socketId) => lost.push(socketId),
  });
  const node = { id, index, store, metrics, registry, lost };
  nodes.push(node);
  await store.start();
  return node;
}

/** Everything a node's index holds, in a canonical form: equal on two nodes = same view. */
function viewOf(index: SessionIndex): string {
  const rooms = [...index.allRooms()].map((room) => ({
    room: `${room.projectKey}/${room.sessionId}`,
    data: room.data ? `${room.data.version}@${room.data.origin}:${JSON.stringify(room.data.fields)}` : null,
    tabs: [...room.tabs.values()].map((t) => `${t.tabId}:${t.socketId}@${t.nodeId}:${t.pageTitle}`).sort(),
    agents: [...room.agents.keys()].sort(),
  }));
  return JSON.stringify(rooms.sort((a, b) => (a.room < b.room ? -1 : 1)));
}

async function converged(ms: number, ...group: TestNode[]): Promise<number> {
  return eventually(
    () => group.every((n) => viewOf(n.index) === viewOf((group[0] as TestNode).index)),
    () => group.map((n) => `${n.id}: ${viewOf(n.index)}`).join('\n'),
    ms,
  );
}

async function counter(node: TestNode, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = (await node.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const values = (metric?.values ?? []) as { value: number; labels: Record<string, string | number> }[];
  return values.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((sum, v) => sum + v.value, 0);
}

/** Tab `tabId` of `sessionId` on `node`, with its session data. */
function openTab(node: TestNode, sessionId: string, tabId = 't1', fields: Record<string, string> = { userID: `user-${sessionId}` }, version = 1): void {
  node.store.publish(tabUp(sessionId, makeTab(tabId, { nodeId: node.id, socketId: `${node.id}-${sessionId}-${tabId}` }), makeData(fields, version, node.id)));
}

beforeAll(async () => {
  redis = await RedisServer.start();
  admin = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await admin.connect();
});

afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.store.close(false)));
  if (admin.status === 'ready') await admin.flushall();
});

afterAll(async () => {
  admin.disconnect();
  await redis.stop();
});

const backends: [string, () => Promise<{ store: ClusterStore; index: SessionIndex }>][] = [
  [
    'LocalStore',
    async () => {
      const index = new SessionIndex();
      const store = new LocalStore('solo', index);
      await store.start();
      return { store, index };
    },
  ],
  ['RedisStore', () => startNode('solo')],
];

describe.each(backends)('store contract: %s', (_name, make) => {
  test('publish applies to the local index at once: a read right after the write sees it', async () => {
    const { store, index } = await make();
    store.publish(tabUp('s1', makeTab('t1', { nodeId: store.nodeId }), makeData({ userID: 'ann' }, 1, store.nodeId)));
    expect(index.session(PROJECT, 's1')?.userID).toBe('ann');
    store.publish(dataOp('s1', makeData({ userID: 'bob' }, 2, store.nodeId)));
    expect(index.session(PROJECT, 's1')?.userID).toBe('bob');
    store.publish(tabDown('s1', 't1'));
    expect(index.session(PROJECT, 's1')).toBeUndefined();
    expect(store.status()).toEqual({ ready: true, partial: false });
  });
});

describe('RedisStore replication', () => {
  test('ops made on one node reach the others, in order, both ways', async () => {
    const a = await startNode('a');
    const b = await startNode('b');
    openTab(a, 's1');
    a.store.publish(agentUp('s1', makeAgent('agent-1', { nodeId: 'a' })));
    openTab(b, 's2');
    await converged(2_000, a, b);
    expect(b.index.session(PROJECT, 's1')?.userID).toBe('user-s1');
    expect(b.index.room(PROJECT, 's1')?.agents.has('agent-1')).toBe(true);
    expect(a.index.session(PROJECT, 's2')?.userID).toBe('user-s2');

    // A second tab of s1 on b: session data changes on b, and both nodes' shares carry the newest data.
    b.store.publish(tabUp('s1', makeTab('t2', { nodeId: 'b', socketId: 'b-s1-t2' }), makeData({ userID: 'changed' }, 2, 'b')));
    for (let i = 0; i < 20; i++) a.store.publish(tabUp('s1', makeTab('t1', { nodeId: 'a', socketId: 'a-s1-t1', pageTitle: `page ${i}` })));
    await converged(2_000, a, b);
    expect(a.index.session(PROJECT, 's1')?.userID).toBe('changed');
    expect(findTab(b.index.room(PROJECT, 's1'), 't1')?.pageTitle).toBe('page 19');

    a.store.publish(tabDown('s1', 't1', 'a-s1-t1'));
    b.store.publish(tabDown('s2', 't1', 'b-s2-t1'));
    await converged(2_000, a, b);
    expect(a.index.session(PROJECT, 's2')).toBeUndefined();
    expect(b.index.room(PROJECT, 's1')?.tabs.length).toBe(1);
  });

  test('a joining node has the whole view when start() resolves, newest data included', async () => {
    const a = await startNode('a');
    const b = await startNode('b');
    for (let i = 0; i < 50; i++) openTab(i % 2 ? a : b, `s${i}`);
    // s0 lives on b; a second tab of it on a changes its data: whichever share c reads, the data is the newest.
    a.store.publish(tabUp('s0', makeTab('t9', { nodeId: 'a', socketId: 'a-s0-t9' }), makeData({ userID: 'newest' }, 5, 'a')));
    await converged(2_000, a, b);
    const c = await startNode('c');
    expect(c.store.status()).toEqual({ ready: true, partial: false });
    expect(c.index.size).toBe(50);
    expect(viewOf(c.index)).toBe(viewOf(a.index));
    expect(c.index.session(PROJECT, 's0')?.userID).toBe('newest');
  });

  test('the same tab accepted on two nodes at once: every node ends with the same holder, the loser is refused', async () => {
    const a = await startNode('a');
    const b = await startNode('b');
    const c = await startNode('c');
    // Both claims are made before either node has seen the other's: the true race.
    a.store.publish(tabUp('s1', makeTab('t1', { nodeId: 'a', socketId: 'sock-a' }), makeData({ userID: 'from-a' }, 1, 'a')));
    b.store.publish(tabUp('s1', makeTab('t1', { nodeId: 'b', socketId: 'sock-b' }), makeData({ userID: 'from-b' }, 1, 'b')));
    await converged(2_000, a, b, c);
    const holder = findTab(a.index.room(PROJECT, 's1'), 't1');
    expect(['sock-a', 'sock-b']).toContain(holder?.socketId);
    const loser = holder?.socketId === 'sock-a' ? b : a;
    const winner = loser === a ? b : a;
    await eventually(() => loser.lost.length === 1, () => `lost: ${loser.lost.join(',')}`, 1_000);
    expect(loser.lost).toEqual([loser === a ? 'sock-a' : 'sock-b']);
    expect(winner.lost).toEqual([]);
    // Data converges by version (ties: origin), whoever won the tab.
    expect(c.index.session(PROJECT, 's1')?.userID).toBe('from-b');
    // The loser's tab leaving later changes nothing anywhere.
    loser.store.publish(tabDown('s1', 't1', loser === a ? 'sock-a' : 'sock-b'));
    await pause(100);
    await converged(1_000, a, b, c);
    expect(findTab(c.index.room(PROJECT, 's1'), 't1')?.socketId).toBe(holder?.socketId);
  });

  test('the same tab accepted on two nodes while Redis was away: one holder everywhere once it is back; the claim that lost is reconsidered when the winner leaves', async () => {
    const a = await startNode('a');
    const b = await startNode('b');
    const c = await startNode('c');
    await redis.pause();
    try {
      await eventually(() => [a, b, c].every((n) => n.store.status().partial), () => 'not partial', 3_000);
      // b's socket connected later than a's: whatever order the claims travel in, a's wins.
      b.store.publish(tabUp('s1', makeTab('t1', { nodeId: 'b', socketId: 'sock-b', connectedAt: 2_000 }), makeData({ userID: 'from-b' }, 1, 'b')));
      a.store.publish(tabUp('s1', makeTab('t1', { nodeId: 'a', socketId: 'sock-a', connectedAt: 1_000 }), makeData({ userID: 'from-a' }, 1, 'a')));
    } finally {
      await redis.resume();
    }
    await eventually(() => [a, b, c].every((n) => findTab(n.index.room(PROJECT, 's1'), 't1')?.socketId === 'sock-a'), () => [a, b, c].map((n) => `${n.id}: ${viewOf(n.index)}`).join('\n'), 8_000);
    await eventually(() => b.lost.length === 1, () => `lost: ${b.lost.join(',')}`, 1_000);
    expect(b.lost).toEqual(['sock-b']);
    expect(a.lost).toEqual([]);
    // The winner leaves while the loser's socket is still there (its refusal not through yet): it holds the tab, everywhere.
    a.store.publish(tabDown('s1', 't1', 'sock-a'));
    await eventually(() => [a, b, c].every((n) => findTab(n.index.room(PROJECT, 's1'), 't1')?.socketId === 'sock-b'), () => [a, b, c].map((n) => `${n.id}: ${viewOf(n.index)}`).join('\n'), 8_000);
    // And when it leaves too, no node keeps a ghost.
    b.store.publish(tabDown('s1', 't1', 'sock-b'));
    await eventually(() => [a, b, c].every((n) => n.index.session(PROJECT, 's1') === undefined), () => [a, b, c].map((n) => `${n.id}: ${viewOf(n.index)}`).join('\n'), 2_000);
  });

  test('a node that loads the view after a same-tab race still knows the claim that lost: it holds the tab when the winner leaves', async () => {
    const a = await startNode('a');
    const b = await startNode('b');
    a.store.publish(tabUp('s1', makeTab('t1', { nodeId: 'a', socketId: 'sock-a', connectedAt: 1_000 }), makeData({ userID: 'from-a' }, 1, 'a')));
    b.store.publish(tabUp('s1', makeTab('t1', { nodeId: 'b', socketId: 'sock-b', connectedAt: 2_000 }), makeData({ userID: 'from-b' }, 1, 'b')));
    await eventually(() => b.lost.length === 1, () => `lost: ${b.lost.join(',')}`, 2_000);
    // b's writes are in order: once a sees this later one, b has saved its share as it is after losing s1's tab.
    b.store.publish(agentUp('s2', makeAgent('agent-b', { nodeId: 'b' })));
    await eventually(() => a.index.room(PROJECT, 's2') !== undefined, () => viewOf(a.index), 2_000);
    // c's only source for the claims is the saved shares: b's op with sock-b is older than c's view.
    const c = await startNode('c');
    await converged(2_000, a, b, c);
    // The winner leaves while the loser's socket is still there (its refusal not through yet).
    a.store.publish(tabDown('s1', 't1', 'sock-a'));
    await eventually(() => [a, b, c].every((n) => findTab(n.index.room(PROJECT, 's1'), 't1')?.socketId === 'sock-b'), () => [a, b, c].map((n) => `${n.id}: ${viewOf(n.index)}`).join('\n'), 2_000);
    b.store.publish(tabDown('s1', 't1', 'sock-b'));
    await eventually(() => [a, b, c].every((n) => n.index.session(PROJECT, 's1') === undefined), () => [a, b, c].map((n) => `${n.id}: ${viewOf(n.index)}`).join('\n'), 2_000);
  });

  test('a frozen Redis marks the view partial within about a second; the first answer after it resynchronises', async () => {
    const a = await startNode('a');
    redis.freeze();
    const frozenAt = Date.now();
    try {
      await eventually(() => a.store.status().partial, () => JSON.stringify(a.store.status()), 3_000);
      expect(Date.now() - frozenAt).toBeLessThan(scaled(3_000));
      expect(a.store.status().reason).toMatch(/not answering/);
    } finally {
      redis.thaw();
    }
    await eventually(() => !a.store.status().partial, () => JSON.stringify(a.store.status()), 5_000);
    expect(await counter(a, 'hub_cluster_stalls_total')).toBe(1);
    expect(await counter(a, 'hub_cluster_resyncs_total', { reason: 'stall' })).toBe(1);
  });

  test('a node whose own event loop is busy does not take it for a Redis stall', async () => {
    const a = await startNode('a');
    // Busy spells longer than CLUSTER_STALL_MS (500 ms), one loop iteration apart: a health ping
    // sent in the timers phase between two spells is answered during the next spell, and that
    // answer waits unread in the socket until the poll phase after the next timers phase.
    for (let i = 0; i < 6; i++) {
      await new Promise<void>((resolve) =>
        setImmediate(() => {
          const until = performance.now() + 700;
          while (performance.now() < until) {
            // busy, as a long turn or a full GC of a big heap is
          }
          resolve();
        }),
      );
    }
    await pause(300);
    expect(await counter(a, 'hub_cluster_stalls_total')).toBe(0);
    expect(await counter(a, 'hub_cluster_resyncs_total', { reason: 'stall' })).toBe(0);
    expect(a.store.status().partial).toBe(false);
  });

  test('a gap in the stream makes a node reload the view (and it still converges)', async () => {
    const a = await startNode('a');
    const b = await startNode('b');
    openTab(a, 's1');
    await converged(2_000, a, b);
    // Entries lost between two reads (what trimming does to a reader far behind).
    await admin.incrby(keys.seq, 3);
    openTab(a, 's2');
    await converged(2_000, a, b);
    expect(b.index.session(PROJECT, 's2')).toBeDefined();
    await eventually(async () => (await counter(b, 'hub_cluster_resyncs_total', { reason: 'gap' })) >= 1, () => 'no gap resync on b', 1_000);
  });

  test('a node that dies silently: its sessions leave every view within the TTL bound', async () => {
    const a = await startNode('a');
    const b = await startNode('b');
    const c = await startNode('c');
    openTab(c, 's1');
    c.store.publish(agentUp('s2', makeAgent('agent-c', { nodeId: 'c' })));
    openTab(a, 's3');
    await converged(2_000, a, b, c);
    expect(a.index.size).toBe(2);
    // No hand-off: like a killed process, c just stops (its heartbeat expires).
    await c.store.close(false);
    nodes.splice(nodes.indexOf(c), 1);
    const took = await eventually(() => a.index.session(PROJECT, 's1') === undefined && b.index.session(PROJECT, 's1') === undefined, () => viewOf(b.index), REMOVAL_BOUND_MS + 1_000);
    expect(took).toBeLessThan(scaled(REMOVAL_BOUND_MS));
    expect(a.index.room(PROJECT, 's2')).toBeUndefined();
    expect(b.index.session(PROJECT, 's3')).toBeDefined();
    expect(await admin.exists(keys.node('c'), keys.alive('c'))).toBe(0);
    expect(await admin.sismember(keys.nodes, 'c')).toBe(0);
    expect((await counter(a, 'hub_cluster_evictions_total')) + (await counter(b, 'hub_cluster_evictions_total'))).toBe(1);
  });

  test('a node that leaves with hand-off: its sessions leave every view at once', async () => {
    const a = await startNode('a');
    const b = await startNode('b');
    openTab(b, 's1');
    await converged(2_000, a, b);
    await b.store.close(true);
    const took = await eventually(() => a.index.session(PROJECT, 's1') === undefined, () => viewOf(a.index), 1_000);
    expect(took).toBeLessThan(scaled(HEARTBEAT_MS * 2));
  });

  test('a node removed while alive (a long pause) re-states its share and comes back', async () => {
    const a = await startNode('a');
    const b = await startNode('b');
    openTab(a, 's1');
    await converged(2_000, a, b);
    // What a sweeping node does to a node whose heartbeat expired.
    await downScript.run(admin, [keys.node('a'), keys.alive('a'), keys.nodes, ...streamKeys(keys)], [10_000, 64 * 1024 * 1024, 'a', 'b', '0']);
    await eventually(() => b.index.session(PROJECT, 's1') === undefined, () => viewOf(b.index), 1_000);
    await converged(2_000, a, b);
    expect(b.index.session(PROJECT, 's1')).toBeDefined();
    // Counted once the recovery has reloaded the view, which can end after b already sees a's re-statement.
    await eventually(async () => (await counter(a, 'hub_cluster_resyncs_total', { reason: 'evicted' })) === 1, async () => `evicted resyncs: ${await counter(a, 'hub_cluster_resyncs_total', { reason: 'evicted' })}`, 1_000);
  });

  test('Redis restarted empty: views are partial meanwhile, then converge to the truth', async () => {
    const a = await startNode('a');
    const b = await startNode('b');
    openTab(a, 'ends-during-outage');
    openTab(a, 'a-stays');
    openTab(b, 'b-stays');
    await converged(2_000, a, b);

    // Nobody's session flickers out and back in while the nodes re-state after the restart.
    const removed: string[] = [];
    a.index.onChange((c) => c.after === undefined && removed.push(c.sessionId));
    await redis.pause();
    await eventually(() => a.store.status().partial && b.store.status().partial, () => JSON.stringify([a.store.status(), b.store.status()]), 2_000);
    expect(a.store.status().ready).toBe(true);
    // Local changes keep applying locally; none of them can reach the other node now.
    a.store.publish(tabDown('ends-during-outage', 't1', 'a-ends-during-outage-t1'));
    openTab(a, 'starts-during-outage');
    b.store.publish(dataOp('b-stays', makeData({ userID: 'changed-in-outage' }, 2, 'b')));
    expect(a.index.session(PROJECT, 'starts-during-outage')).toBeDefined();
    expect(b.index.session(PROJECT, 'ends-during-outage')).toBeDefined();

    await redis.resume();
    await eventually(() => !a.store.status().partial && !b.store.status().partial, () => JSON.stringify([a.store.status(), b.store.status()]), 5_000);
    await converged(2_000, a, b);
    expect([...b.index.sessions(PROJECT)].map((s) => s.sessionID).sort()).toEqual(['a-stays', 'b-stays', 'starts-during-outage']);
    expect(a.index.session(PROJECT, 'b-stays')?.userID).toBe('changed-in-outage');
    expect(removed).toEqual(['ends-during-outage']);
    // A node that joins now sees the same.
    const c = await startNode('c');
    expect(viewOf(c.index)).toBe(viewOf(a.index));
  });

  test('a node that dies while Redis is away: its sessions leave once Redis is back and it never re-states', async () => {
    const a = await startNode('a');
    const c = await startNode('c');
    openTab(a, 'on-a');
    openTab(c, 'on-c');
    await converged(2_000, a, c);
    await redis.pause();
    await c.store.close(false);
    nodes.splice(nodes.indexOf(c), 1);
    await redis.resume();
    const took = await eventually(() => a.index.session(PROJECT, 'on-c') === undefined, () => viewOf(a.index), REMOVAL_BOUND_MS + 3_000);
    expect(took).toBeLessThan(scaled(REMOVAL_BOUND_MS + 1_000));
    expect(a.index.session(PROJECT, 'on-a')).toBeDefined();
  });

  test('Redis unreachable at start: the node is not ready, then joins when Redis comes', async () => {
    await redis.pause();
    try {
      const a = await startNode('a', 300);
      expect(a.store.status()).toMatchObject({ ready: false, partial: true });
      openTab(a, 's1');
      await redis.resume();
      await eventually(() => a.store.status().ready, () => JSON.stringify(a.store.status()), 5_000);
      const b = await startNode('b');
      expect(b.index.session(PROJECT, 's1')).toBeDefined();
    } finally {
      await redis.resume();
    }
  });
});

describe('RedisStore: the ops stream is bounded in bytes, not only in entries', () => {
  /** What the stream and its ledger cost Redis, as MEMORY USAGE counts it (every element, not a sample). */
  async function streamMemory(): Promise<number> {
    const stream = Number(await admin.call('MEMORY', 'USAGE', keys.stream, 'SAMPLES', '0'));
    const ledger = Number((await admin.call('MEMORY', 'USAGE', keys.ledger, 'SAMPLES', '0')) ?? 0);
    return stream + ledger;
  }

  /** `rounds` batches (one stream entry each: a batch is one turn's ops) of `perRound` data ops of ~`bytes` each. */
  async function writeMany(node: TestNode, rounds: number, perRound: number, bytes: number): Promise<void> {
    openTab(node, 'big');
    let version = 2;
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < perRound; i++) node.store.publish(dataOp('big', makeData({ userID: 'u', blob: `${r}-${i}-`.padEnd(bytes, 'x') }, version++, node.id)));
      await pause(1);
    }
  }

  test.each([
    ['large entries (10 ops of 2 kB)', 200, 10, 2_000],
    ['small entries (1 op of 150 B)', 1_500, 1, 150],
  ])('a busy writer, %s: the stream and its ledger stay within CLUSTER_STREAM_MAX_BYTES (MEMORY USAGE), and the other node still converges', async (_name, rounds, perRound, bytes) => {
    const maxBytes = 256 * 1024;
    const a = await startNode('a', 5_000, { maxLen: 100_000, maxBytes });
    const b = await startNode('b');
    // Several times the budget through the stream, far under the entry bound.
    await writeMany(a, rounds, perRound, bytes);
    // Trimming is only a reader's problem if it falls behind: b reloads on a gap and ends with a's view.
    await converged(5_000, a, b);
    const written = Number(await admin.get(keys.seq));
    expect(written).toBeGreaterThan(rounds / 4);
    const entries = await admin.xlen(keys.stream);
    expect(entries).toBeLessThan(written);
    const memory = await streamMemory();
    expect(memory).toBeLessThanOrEqual(maxBytes);
    expect(Number(await admin.get(keys.bytes))).toBeLessThanOrEqual(maxBytes);
    expect(await admin.llen(keys.ledger)).toBe(entries);
  });

  test('the ledger that counts the bytes is bounded by the entry count too', async () => {
    const a = await startNode('a', 5_000, { maxLen: 50, maxBytes: 64 * 1024 * 1024 });
    await writeMany(a, 120, 1, 10);
    // Batches written while one is in flight share an entry: well over 50 entries is enough.
    await eventually(async () => Number(await admin.get(keys.seq)) >= 80, async () => `seq ${await admin.get(keys.seq)}`, 5_000);
    expect(await admin.llen(keys.ledger)).toBeLessThanOrEqual(50);
    expect(await admin.xlen(keys.stream)).toBeLessThanOrEqual(50);
  });

  test('an entry larger than the whole budget is kept alone (the newest entry always stays)', async () => {
    const maxBytes = 64 * 1024;
    const a = await startNode('a', 5_000, { maxLen: 100_000, maxBytes });
    await writeMany(a, 3, 1, 100 * 1024);
    await eventually(async () => Number(await admin.get(keys.seq)) >= 3, async () => `seq ${await admin.get(keys.seq)}`, 5_000);
    expect(await admin.xlen(keys.stream)).toBe(1);
    const [newest] = await admin.xrevrange(keys.stream, '+', '-', 'COUNT', 1);
    const fields = newest?.[1] ?? [];
    expect(fields[fields.indexOf('s') + 1]).toBe(await admin.get(keys.seq));
  });
});

describe('RedisStore: writes are capped batches, pipelined', () => {
  /** The ops entries (kind `o`) in the stream: how many, and how many ops each carries. */
  async function opsEntries(): Promise<number[]> {
    const entries = await admin.xrange(keys.stream, '-', '+');
    return entries.filter(([, f]) => f[f.indexOf('k') + 1] === 'o').map(([, f]) => (JSON.parse(f[f.indexOf('p') + 1] ?? '[]') as unknown[]).length);
  }

  test('a backlog of 1,000 ops goes out in entries of at most 256 ops, and the other node gets every op', async () => {
    const a = await startNode('a');
    const b = await startNode('b');
    for (let i = 0; i < 1_000; i++) openTab(a, `s${i}`);
    await converged(5_000, a, b);
    expect(await opsEntries()).toEqual([256, 256, 256, 232]);
  });

  test('an op made while a write is unanswered goes out at once, behind it, not after its answer', async () => {
    const a = await startNode('a');
    const b = await startNode('b');
    // Redis holds every write for a while: the first batch stays unanswered.
    await admin.call('CLIENT', 'PAUSE', String(scaled(400)), 'WRITE');
    openTab(a, 's1');
    await pause(50);
    openTab(a, 's2');
    await pause(50);
    openTab(a, 's3');
    await converged(5_000, a, b);
    // One write in flight at a time would have batched s2 and s3 into one entry behind s1's.
    expect(await opsEntries()).toEqual([1, 1, 1]);
  });

  test('the script cache flushed under pipelined writes: the failed write re-states, and every node converges', async () => {
    const a = await startNode('a');
    const b = await startNode('b');
    await admin.script('FLUSH');
    for (let i = 0; i < 600; i++) openTab(a, `s${i}`);
    await converged(5_000, a, b);
    expect(b.index.session(PROJECT, 's599')).toBeDefined();
    await eventually(async () => (await counter(a, 'hub_cluster_resyncs_total', { reason: 'reconnect' })) >= 1, async () => `resyncs: ${await counter(a, 'hub_cluster_resyncs_total', { reason: 'reconnect' })}`, 2_000);
  });
});
