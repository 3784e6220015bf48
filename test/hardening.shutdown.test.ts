/** Shutdown of an in-process hub (issue 12, item 8): a drain delay with /ready 503 first, and no keep-alive. */
import { request } from 'node:http';
import type { Hub } from '../src/server';
import { projectKey, startTestHub } from './support/hub';
import { call } from './support/http';
import { MAX_CLOSES_PER_TURN } from '../src/live/shutdownPacing';
import { closeAllPeers, connectTracker, trackerPeer } from './support/live';

/** GET over its own connection: status and the Connection header, or 'refused'. */
function get(url: string, path: string): Promise<{ status: number; connection: string | undefined } | 'refused'> {
  return new Promise((resolve) => {
    const req = request(`${url}${path}`, { agent: false, headers: { connection: 'keep-alive' } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection }));
    });
    req.on('error', () => resolve('refused'));
    req.end();
  });
}

describe('shutdown drain', () => {
  let hub: Hub;
  beforeAll(async () => {
    hub = await startTestHub({ SHUTDOWN_DRAIN_MS: '600' });
  });
  afterAll(async () => {
    await hub.shutdown();
  });

  test('during SHUTDOWN_DRAIN_MS /ready is 503, everything still answers, with Connection: close', async () => {
    expect(await get(hub.url, '/ready')).toMatchObject({ status: 200, connection: 'keep-alive' });
    const stopping = hub.shutdown();
    expect(await get(hub.url, '/ready')).toEqual({ status: 503, connection: 'close' });
    // Not scaled by TEST_TIME_FACTOR: the wait must end inside the 600 ms drain it looks into.
    await new Promise((r) => setTimeout(r, 300));
    expect(await get(hub.url, '/health')).toEqual({ status: 200, connection: 'close' });
    await stopping;
    expect(await get(hub.url, '/health')).toBe('refused');
  });
});

describe('handshakes while draining', () => {
  test('a tab connecting during the drain is refused NOT_READY, and the refusal is counted', async () => {
    const hub = await startTestHub({ SHUTDOWN_DRAIN_MS: '3000' });
    const stopping = hub.shutdown();
    try {
      const refusal = await trackerPeer(hub, { projectKey: projectKey('draining'), sessionId: '77', tabId: 't1' }).refused();
      expect(refusal).toMatch(/not accepting connections/);
      const metrics = (await call(hub.url, '/metrics', { key: null })).text;
      expect(metrics).toContain('hub_connects_refused_total{reason="not_ready"} 1');
    } finally {
      await stopping;
    }
  });
});

describe('closing the connections', () => {
  afterEach(closeAllPeers);

  test('the closes are spread over loop turns, and every tab is still disconnected and leaves the index', async () => {
    const hub = await startTestHub();
    try {
      await closesSpreadOverTurns(hub);
    } finally {
      // Idempotent: a no-op when the test got as far as its own shutdown.
      await hub.shutdown();
    }
  });
});

/** 240 tabs (more than one batch), then the hub's shutdown, watched from the server sockets. */
async function closesSpreadOverTurns(hub: Hub): Promise<void> {
  const project = projectKey('closing');
  const count = MAX_CLOSES_PER_TURN + 40;
  const tabs: Awaited<ReturnType<typeof connectTracker>>[] = [];
  // In batches: each connect has a few seconds, which 240 at once on a busy box may not get.
  for (let from = 0; from < count; from += 40) {
    const batch = Array.from({ length: Math.min(40, count - from) }, (_, i) => connectTracker(hub, { projectKey: project, sessionId: String(100 + from + i), tabId: 't' }));
    tabs.push(...(await Promise.all(batch)));
  }
  expect(hub.ctx.index.size).toBe(count);
  // A turn counter: one step per check phase of the event loop.
  let turn = 0;
  let ticking = true;
  const tick = (): void => {
    turn += 1;
    if (ticking) setImmediate(tick);
  };
  const turnsOfCloses = new Set<number>();
  for (const socket of hub.io.of('/').sockets.values()) socket.once('disconnect', () => turnsOfCloses.add(turn));
  setImmediate(tick);
  try {
    await hub.shutdown();
  } finally {
    ticking = false;
  }
  // io.close() alone closes all of them in the turn it runs in.
  expect(turnsOfCloses.size).toBeGreaterThan(1);
  await Promise.all(tabs.map((tab) => tab.next('disconnect')));
  expect(hub.ctx.index.size).toBe(0);
}
