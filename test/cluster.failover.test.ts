/**
 * Hub nodes as real processes around a real Redis, and what happens when things fail: a node
 * killed with SIGKILL, a node shut down gracefully (its trackers reconnect through the balancer
 * and land on another node), a node joining late or restarting, and Redis itself stopped and
 * restarted mid-run. REST answers and dashboard subscriptions on the surviving nodes are checked.
 */
import { DashboardClient, type LiveSubscription } from '../src/client/dashboardClient';
import { Balancer, NodeProcess, REMOVAL_BOUND_MS, agentAt, idsAt, listAt } from './support/cluster';
import { API_KEY, closeAllPeers, connectTracker, newSessionId, projectKey } from './support/live';
import { RedisServer } from './support/redis';
import { eventually, scaled } from './support/wait';

const PK = projectKey('failover');

let redis: RedisServer;
let a: NodeProcess;
let b: NodeProcess;
const extra: NodeProcess[] = [];
const dashboards: DashboardClient[] = [];

async function dashboardOn(node: NodeProcess): Promise<LiveSubscription> {
  const client = new DashboardClient({ url: node.url, token: API_KEY });
  dashboards.push(client);
  await client.connected();
  return client.subscribe({ projectKey: PK, limit: 200 });
}

const viewIds = (sub: LiveSubscription) => [...sub.view.sessions.keys()].sort();

async function spawn(nodeId: string, env: Record<string, string> = {}): Promise<NodeProcess> {
  const node = await NodeProcess.spawn(redis.url, nodeId, env);
  extra.push(node);
  return node;
}

beforeAll(async () => {
  redis = await RedisServer.start();
  [a, b] = await Promise.all([NodeProcess.spawn(redis.url, 'node-a'), NodeProcess.spawn(redis.url, 'node-b')]);
}, 60_000);

afterEach(async () => {
  for (const d of dashboards.splice(0)) d.close();
  await closeAllPeers();
  await Promise.all(extra.splice(0).map((n) => n.kill9()));
});

afterAll(async () => {
  await Promise.all([a, b].filter(Boolean).map((n) => n.terminate()));
  await redis?.stop();
});

test('a node killed with SIGKILL: its sessions leave every node and every dashboard within the TTL bound', async () => {
  const c = await spawn('node-c');
  const sub = await dashboardOn(b);
  const onA = newSessionId();
  const onC = newSessionId();
  await connectTracker(a.url, { projectKey: PK, sessionId: onA });
  const tracker = await connectTracker(c.url, { projectKey: PK, sessionId: onC, info: { userID: 'carol' } });

  // A dashboard on b sees sessions created on other nodes, and their changes.
  await eventually(() => viewIds(sub).join() === [onA, onC].sort().join(), () => viewIds(sub).join(), 2_000);
  tracker.emit('UPDATE_SESSION', { meta: { tabId: 'tab1' }, data: { userID: 'carol@updated' } });
  await eventually(() => sub.view.sessions.get(onC)?.userID === 'carol@updated', () => JSON.stringify(sub.view.sessions.get(onC)), 2_000);

  const killedAt = Date.now();
  await c.kill9();
  const gone = await eventually(async () => !(await idsAt(a.url, PK)).includes(onC) && !(await idsAt(b.url, PK)).includes(onC), async () => (await idsAt(a.url, PK)).join(), REMOVAL_BOUND_MS + 2_000);
  await eventually(() => !sub.view.sessions.has(onC), () => viewIds(sub).join(), 500);
  expect(Date.now() - killedAt).toBeLessThan(scaled(REMOVAL_BOUND_MS + 500));
  expect(gone).toBeLessThan(scaled(REMOVAL_BOUND_MS + 500));
  expect(viewIds(sub)).toEqual([onA]);
  expect(await idsAt(b.url, PK)).toEqual([onA]);
  expect(sub.stats.gaps).toBe(0);
});

test('a graceful shutdown hands off at once; its trackers reconnect through the balancer to another node', async () => {
  // A long TTL for d: a removal that came from its heartbeat expiring would take seconds.
  const d = await spawn('node-d', { CLUSTER_NODE_TTL_MS: '8000' });
  const balancer = await new Balancer([d.port]).listen();
  try {
    const sub = await dashboardOn(b);
    const stays = newSessionId();
    const moves = newSessionId();
    const ends = newSessionId();
    await connectTracker(a.url, { projectKey: PK, sessionId: stays });
    const mover = await connectTracker(balancer.url, { projectKey: PK, sessionId: moves, reconnection: true });
    await connectTracker(balancer.url, { projectKey: PK, sessionId: ends });
    await eventually(() => viewIds(sub).length === 3, () => viewIds(sub).join(), 2_000);

    // The balancer stops sending new connections to d (its /ready turns 503 as it drains).
    balancer.remove(d.port);
    balancer.add(a.port);
    const stoppedAt = Date.now();
    await d.terminate();
    // d's tracker that does not reconnect: removed everywhere long before d's 8 s TTL.
    await eventually(() => !sub.view.sessions.has(ends), () => viewIds(sub).join(), 2_000);
    expect(Date.now() - stoppedAt).toBeLessThan(scaled(2_000));
    expect(await idsAt(a.url, PK)).not.toContain(ends);

    // The other one was told to reconnect (transport closed, not a server disconnect) and is back, on a.
    expect(mover.all('disconnect')[0]).toEqual(['transport close']);
    await eventually(() => mover.socket.connected, () => 'tracker did not reconnect', 3_000);
    await eventually(async () => (await idsAt(b.url, PK)).includes(moves) && viewIds(sub).includes(moves), async () => (await idsAt(b.url, PK)).join(), 2_000);
    expect((await idsAt(a.url, PK)).sort()).toEqual([stays, moves].sort());
  } finally {
    await balancer.close();
  }
});

test('a node that joins late, or restarts with the same id, has the whole view before it reports ready', async () => {
  const ids = [newSessionId(), newSessionId(), newSessionId()];
  await connectTracker(a.url, { projectKey: PK, sessionId: ids[0] as string });
  await connectTracker(b.url, { projectKey: PK, sessionId: ids[1] as string });
  const c = await spawn('node-c');
  await connectTracker(c.url, { projectKey: PK, sessionId: ids[2] as string });
  await eventually(async () => (await idsAt(a.url, PK)).length === 3, async () => (await idsAt(a.url, PK)).join(), 2_000);

  // Ready means loaded: the first answer after /ready is 200 is already complete.
  const late = await spawn('node-late');
  expect(await idsAt(late.url, PK)).toEqual([...ids].sort());

  // c dies and comes back under the same id before its TTL: its old sessions go at once.
  await c.kill9();
  const again = await spawn('node-c');
  expect(await idsAt(again.url, PK)).toEqual([ids[0], ids[1]].sort());
  await eventually(async () => (await idsAt(a.url, PK)).length === 2, async () => (await idsAt(a.url, PK)).join(), 1_000);
});

test('Redis stopped and restarted: nodes keep serving (marked partial), then every view converges', async () => {
  const sub = await dashboardOn(b);
  const endsInOutage = newSessionId();
  const startsInOutage = newSessionId();
  const onB = newSessionId();
  const localId = newSessionId();
  const ending = await connectTracker(a.url, { projectKey: PK, sessionId: endsInOutage });
  const local = await connectTracker(a.url, { projectKey: PK, sessionId: localId });
  await connectTracker(b.url, { projectKey: PK, sessionId: onB });
  await eventually(() => viewIds(sub).length === 3, () => viewIds(sub).join(), 2_000);
  const agent = await agentAt(a.url, { projectKey: PK, sessionId: localId }).connected();

  await redis.pause();
  await eventually(async () => (await listAt(a.url, PK)).partial, () => 'a never reported partial', 3_000);
  const during = await listAt(a.url, PK);
  expect(during.status).toBe(200);
  expect(during.sessions.map((s) => s.sessionID)).toContain(onB);
  const ready = await fetch(`${a.url}/ready`);
  expect(ready.status).toBe(200);
  expect(await ready.json()).toEqual({ status: 'ready', partial: true });

  // Local room traffic does not wait for Redis.
  agent.emit('ping_tab', { meta: { tabId: 'tab1' } });
  expect(await local.next('ping_tab')).toEqual([agent.id, { meta: { tabId: 'tab1' } }]);

  await ending.close();
  await connectTracker(a.url, { projectKey: PK, sessionId: startsInOutage });
  expect(await idsAt(a.url, PK)).toContain(startsInOutage);

  await redis.resume();
  const truth = [localId, onB, startsInOutage].sort();
  await eventually(async () => !(await listAt(a.url, PK)).partial && !(await listAt(b.url, PK)).partial, () => 'still partial', 8_000);
  await eventually(async () => (await idsAt(b.url, PK)).join() === truth.join() && (await idsAt(a.url, PK)).join() === truth.join(), async () => `a: ${(await idsAt(a.url, PK)).join()} b: ${(await idsAt(b.url, PK)).join()}`, 2_000);
  // No dashboard keeps a session that ended while Redis was away.
  await eventually(() => viewIds(sub).join() === truth.join(), () => viewIds(sub).join(), 2_000);
  expect(await (await fetch(`${b.url}/ready`)).json()).toEqual({ status: 'ready', partial: false });
});
