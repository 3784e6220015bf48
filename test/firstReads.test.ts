/**
 * A restart storm's first reads in bounded numbers (src/live/firstReads.ts, and the first read of
 * an upgraded socket in lifecyclePacing.ts), against the real hub: the requests and CONNECTs that
 * arrive together are not all handled in the poll phase that could read them, every client is
 * still served, and idle connections cannot hold the others back.
 */
import type { Socket as TcpSocket } from 'node:net';
import { admitDecision } from '../src/live/firstReads';
import type { Hub } from '../src/server';
import { call } from './support/http';
import { projectKey, startTestHub } from './support/hub';
import { UPGRADE_REQUEST, answerOf, holdLoop, openRaw, rawTab } from './support/raw';
import { eventually } from './support/wait';

/**
 * Runs `send` in a check phase, holds the loop so that everything sent reaches the kernel, and
 * resolves with `count()` taken in the check phase right after the next poll phase: what the hub
 * handled in the one poll phase that could read everything.
 */
function inOnePollPhase(send: () => void, count: () => number): Promise<number> {
  return new Promise<number>((resolve) => {
    setImmediate(() => {
      send();
      holdLoop(50);
      setImmediate(() => resolve(count()));
    });
  });
}

/** The hub's accepted sockets, and how many upgrade requests it has read, from now on. */
function watchFirstReads(live: Hub): { accepted: TcpSocket[]; upgradesRead: () => number } {
  const accepted: TcpSocket[] = [];
  let upgradesRead = 0;
  live.httpServer.on('connection', (socket: TcpSocket) => accepted.push(socket));
  // After the hub's own listeners: it runs where the request is read.
  live.httpServer.on('upgrade', () => upgradesRead++);
  return { accepted, upgradesRead: () => upgradesRead };
}

/**
 * Every raw socket writes its upgrade request in one check phase: the requests the hub read in the
 * poll phase that could read them all, and the status line of each answer.
 */
async function upgradeTogether(raws: readonly TcpSocket[], upgradesRead: () => number): Promise<{ readByThen: number; statusLines: string[] }> {
  const answers = raws.map(answerOf);
  const readByThen = await inOnePollPhase(() => {
    for (const raw of raws) raw.write(UPGRADE_REQUEST);
  }, upgradesRead);
  const statusLines = (await Promise.all(answers)).map((head) => head.split('\r\n', 1)[0] as string);
  return { readByThen, statusLines };
}

describe('first reads of new connections', () => {
  let hub: Hub | undefined;
  const raws: TcpSocket[] = [];
  afterEach(async () => {
    for (const raw of raws.splice(0)) raw.destroy();
    await hub?.shutdown();
    hub = undefined;
  });

  test('upgrade requests that arrive together are read a few per poll phase, and all are answered', async () => {
    // Places that never expire: on a loaded machine the setup alone can outlast the default 100 ms.
    hub = await startTestHub({ MAX_UNREAD_CONNECTIONS: '3', FIRST_READ_EXPIRE_MS: '60000' });
    const live = hub;
    const { accepted, upgradesRead } = watchFirstReads(live);
    for (let i = 0; i < 12; i++) raws.push(await openRaw(live));
    await eventually(() => accepted.length === 12, () => `accepted ${accepted.length}`);
    const { readByThen, statusLines } = await upgradeTogether(raws, upgradesRead);
    // Without the gate the poll phase reads all 12.
    expect(readByThen).toBe(3);
    expect(statusLines).toEqual(raws.map(() => 'HTTP/1.1 101 Switching Protocols'));
  });

  test('connections left idle hold back a new one only until their places expire', async () => {
    hub = await startTestHub({ MAX_UNREAD_CONNECTIONS: '2' });
    const live = hub;
    const { accepted } = watchFirstReads(live);
    // Two connections that never send anything take both places.
    for (let i = 0; i < 2; i++) raws.push(await openRaw(live));
    await eventually(() => accepted.length === 2, () => `accepted ${accepted.length}`);
    // Without the expiry the request below is never read (the test times out).
    const { status } = await call(live.url, '/health', { key: null });
    expect(status).toBe(200);
  });

  test('a connection whose place expired is paused again behind the others, and still served', async () => {
    hub = await startTestHub({ MAX_UNREAD_CONNECTIONS: '2' });
    const live = hub;
    const { accepted, upgradesRead } = watchFirstReads(live);
    const reading = (socket: TcpSocket | undefined) => (socket as unknown as { _handle?: { reading?: boolean } } | undefined)?._handle?.reading === true;
    // The first two take the places and stay idle; the next two wait, and get the places when the
    // first two expire.
    for (let i = 0; i < 4; i++) {
      raws.push(await openRaw(live));
      await eventually(() => accepted.length === i + 1, () => `accepted ${accepted.length}`);
    }
    await eventually(() => reading(accepted[2]) && reading(accepted[3]), () => 'the waiting connections are not read yet');
    const { readByThen, statusLines } = await upgradeTogether(raws, upgradesRead);
    // Left reading after their expiry, the first two would be read in the same poll phase: 4.
    expect(readByThen).toBe(2);
    expect(statusLines).toEqual(raws.map(() => 'HTTP/1.1 101 Switching Protocols'));
  });

  test('idle connections, once expired, no longer stand in front of new ones: they take turns among themselves when none waits, and are still served', async () => {
    hub = await startTestHub({ MAX_UNREAD_CONNECTIONS: '2' });
    const live = hub;
    const accepted: TcpSocket[] = [];
    const everResumed = new Set<TcpSocket>();
    let resumes = 0;
    const idle = 20;
    live.httpServer.on('connection', (socket: TcpSocket) => {
      if (accepted.push(socket) > idle) return;
      socket.on('resume', () => {
        everResumed.add(socket);
        resumes++;
      });
    });
    for (let i = 0; i < idle; i++) raws.push(await openRaw(live));
    // Every idle connection has had (and lost) its place among the new ones.
    await eventually(() => accepted.length === idle && everResumed.size === idle, () => `${everResumed.size} of ${accepted.length} read`, 10_000);
    const before = resumes;
    const { status } = await call(live.url, '/health', { key: null });
    expect(status).toBe(200);
    // One queue for all: the request waits until the 18 idle ones queued before it have had their
    // turn (18 resumes of idle connections). Behind new ones only: one expiry of the 2 places, 2
    // resumes at most (a second expiry at most while the answer travels).
    expect(resumes - before).toBeLessThanOrEqual(4);
    // A slow connection is still served when it finally sends.
    const answer = answerOf(raws[0] as TcpSocket);
    (raws[0] as TcpSocket).write(UPGRADE_REQUEST);
    expect((await answer).split('\r\n', 1)[0]).toBe('HTTP/1.1 101 Switching Protocols');
  });

  test("an upgraded tab's first read (its CONNECT) is handled in the lifecycle's turns, not in the poll phase that reads it", async () => {
    hub = await startTestHub({ LIFECYCLE_TURN_MS: '1' });
    const live = hub;
    const project = projectKey('firstread');
    let packets = 0;
    live.io.engine.on('connection', (connection: { on(event: 'packet', listener: () => void): void }) => connection.on('packet', () => packets++));
    const tabs = Array.from({ length: 30 }, (_, i) => rawTab(live.url, project, `${9700 + i}`));
    await Promise.all(tabs.map((ws) => new Promise((resolve) => ws.once('open', resolve))));
    const handledByThen = await inOnePollPhase(
      () => {
        for (const ws of tabs) ws.send('40');
      },
      () => packets,
    );
    // Without the hold, engine.io parses all 30 CONNECTs in the poll phase.
    expect(handledByThen).toBe(0);
    await eventually(() => live.ctx.index.projectSize(project) === 30, () => `sessions ${live.ctx.index.projectSize(project)}`);
    for (const ws of tabs) ws.close();
  });
});

describe('admitDecision', () => {
  test('reads a new connection only while places are free and nobody waits before it', () => {
    expect(admitDecision(0, 0, 2)).toBe('read');
    expect(admitDecision(1, 0, 2)).toBe('read');
    expect(admitDecision(2, 0, 2)).toBe('wait');
    expect(admitDecision(0, 1, 2)).toBe('wait');
  });
});
