/**
 * Upgrades, connects and teardowns in bounded turns (src/live/lifecyclePacing.ts), against the
 * real hub: a burst is still served completely, a socket that gives up while it waits changes
 * nothing, and a full queue answers 503 with a code.
 */
import { connect as tcpConnect, type Socket as TcpSocket } from 'node:net';
import { createServer, type Server as HttpServer } from 'node:http';
import { MAX_HELD_READS, endsWithClientClose, paceLifecycle } from '../src/live/lifecyclePacing';
import type { Hub } from '../src/server';
import { call } from './support/http';
import { projectKey, startTestHub } from './support/hub';
import { connectTracker } from './support/live';
import { UPGRADE_REQUEST, answerOf, holdLoop, openRaw, rawTab } from './support/raw';
import { eventually } from './support/wait';

/** Sends an engine.io WebSocket upgrade request; resolves with the response head (or what came before the close). */
function sendUpgrade(socket: TcpSocket): Promise<string> {
  socket.write(UPGRADE_REQUEST);
  return answerOf(socket);
}

async function metricValue(hub: Hub, line: string): Promise<number | undefined> {
  const { text } = await call(hub.url, '/metrics', { key: null });
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}

describe('lifecycle pacing', () => {
  let hub: Hub | undefined;
  afterEach(async () => {
    await hub?.shutdown();
    hub = undefined;
  });

  test('a burst of tabs connecting, then all dropping at once, is seen completely', async () => {
    hub = await startTestHub({ LIFECYCLE_TURN_MS: '1' });
    const live = hub;
    const project = projectKey('pacingburst');
    const tabs = await Promise.all(Array.from({ length: 150 }, (_, i) => connectTracker(live, { projectKey: project, sessionId: `${9000 + i}`, tabId: 't1' })));
    expect(live.ctx.index.projectSize(project)).toBe(150);
    // Abrupt: the TCP connections end without a WebSocket close frame or a Socket.IO disconnect.
    for (const tab of tabs) (tab.socket.io.engine.transport as unknown as { ws: { _socket: TcpSocket } }).ws._socket.destroy();
    await eventually(
      () => live.ctx.index.projectSize(project) === 0 && live.io.engine.clientsCount === 0,
      () => `sessions ${live.ctx.index.projectSize(project)}, connections ${live.io.engine.clientsCount}`,
    );
    await Promise.all(tabs.map((tab) => tab.close()));
  });

  test("the ends of sockets read in one poll phase are handled in the lifecycle's turns, not in that phase", async () => {
    hub = await startTestHub({ LIFECYCLE_TURN_MS: '1' });
    const live = hub;
    const project = projectKey('pacingeof');
    const accepted: TcpSocket[] = [];
    live.httpServer.on('connection', (socket: TcpSocket) => accepted.push(socket));
    const tabs = await Promise.all(Array.from({ length: 40 }, (_, i) => connectTracker(live, { projectKey: project, sessionId: `${9300 + i}`, tabId: 't1' })));
    expect(accepted).toHaveLength(40);
    // The check phase right after the poll phase that reads every end: immediate A (one loop turn
    // before) drops the tabs, half with a FIN and half with a reset; immediate B, queued by A, runs
    // before any turn queued in that poll.
    const handledByThen = await new Promise<number>((resolve) => {
      setImmediate(() => {
        tabs.forEach((tab, i) => {
          const socket = (tab.socket.io.engine.transport as unknown as { ws: { _socket: TcpSocket } }).ws._socket;
          if (i % 2 === 0) socket.destroy();
          else socket.resetAndDestroy();
        });
        holdLoop(50);
        setImmediate(() => resolve(accepted.filter((socket) => socket.destroyed || (socket as unknown as { _readableState: { ended: boolean } })._readableState.ended).length));
      });
    });
    // None was handled yet: without the deferral, Node's read callback ends each Readable (or
    // destroys the socket, for a reset) in the poll phase.
    expect(handledByThen).toBe(0);
    await eventually(
      () => live.ctx.index.projectSize(project) === 0 && live.io.engine.clientsCount === 0 && accepted.every((socket) => socket.destroyed),
      () => `sessions ${live.ctx.index.projectSize(project)}, connections ${live.io.engine.clientsCount}`,
    );
    expect(await metricValue(live, 'hub_live_sessions')).toBe(0);
    await Promise.all(tabs.map((tab) => tab.close()));
  });

  test("polite leaves read in one poll phase (DISCONNECT and close frame) are handled in the lifecycle's turns", async () => {
    hub = await startTestHub({ LIFECYCLE_TURN_MS: '1' });
    const live = hub;
    const project = projectKey('pacingleave');
    const tabs = await Promise.all(Array.from({ length: 40 }, (_, i) => rawTab(live.url, project, `${9500 + i}`)));
    await Promise.all(tabs.map((ws) => new Promise((resolve) => ws.once('open', resolve))));
    for (const ws of tabs) ws.send('40');
    await eventually(() => live.ctx.index.projectSize(project) === 40, () => `sessions ${live.ctx.index.projectSize(project)}`);
    const closed = tabs.map((ws) => new Promise<number>((resolve) => ws.once('close', (code) => resolve(code))));
    // As in the test of ends above: immediate B runs right after the poll phase that read every leave.
    const leftByThen = await new Promise<number>((resolve) => {
      setImmediate(() => {
        for (const ws of tabs) {
          ws.send('41');
          ws.close(1000);
        }
        holdLoop(50);
        setImmediate(() => resolve(40 - live.ctx.index.projectSize(project)));
      });
    });
    // None had left yet: without the hold, Socket.IO and the hub handle each leave in the poll phase.
    expect(leftByThen).toBe(0);
    // Each still gets its close handshake, and leaves the index.
    expect(await Promise.all(closed)).toEqual(tabs.map(() => 1000));
    await eventually(
      () => live.ctx.index.projectSize(project) === 0 && live.io.engine.clientsCount === 0,
      () => `sessions ${live.ctx.index.projectSize(project)}, connections ${live.io.engine.clientsCount}`,
    );
  });

  test('a tab that closes cleanly still gets the close handshake, and leaves the index once', async () => {
    hub = await startTestHub({ LIFECYCLE_TURN_MS: '1' });
    const live = hub;
    const project = projectKey('pacingclean');
    const leaves: string[] = [];
    live.ctx.index.onChange(() => {
      if (live.ctx.index.projectSize(project) === 0) leaves.push('empty');
    });
    const ws = rawTab(live.url, project, '9400');
    const messages: string[] = [];
    ws.on('message', (data) => messages.push(String(data)));
    await new Promise((resolve) => ws.once('open', resolve));
    ws.send('40');
    await eventually(() => live.ctx.index.projectSize(project) === 1, () => JSON.stringify(messages));
    const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: String(reason) })));
    ws.close(1000, 'bye');
    // The hub answered the close frame with its own (ws reports the code it received back).
    expect(await closed).toEqual({ code: 1000, reason: 'bye' });
    await eventually(() => live.io.engine.clientsCount === 0, () => `connections ${live.io.engine.clientsCount}`);
    expect(live.ctx.index.projectSize(project)).toBe(0);
    expect(leaves).toEqual(['empty']);
  });

  test('a second CONNECT sent while the first waits for its turn is refused, not queued', async () => {
    hub = await startTestHub();
    const ws = rawTab(hub.url, projectKey('pacingdup'), '9200');
    const messages: string[] = [];
    ws.on('message', (data) => messages.push(String(data)));
    await new Promise((resolve) => ws.once('open', resolve));
    await eventually(() => messages.some((m) => m.startsWith('0{')), () => JSON.stringify(messages));
    // Both in one write: the hub reads them in one poll, while the first is still queued.
    ws.send('40');
    ws.send('40');
    await eventually(() => messages.filter((m) => m.startsWith('4')).length >= 2, () => JSON.stringify(messages));
    const replies = messages.filter((m) => m.startsWith('4'));
    expect(replies.filter((m) => m.startsWith('40{'))).toHaveLength(1);
    expect(replies.find((m) => m.startsWith('44'))).toContain('BAD_REQUEST');
    expect(await metricValue(hub, 'hub_connects_refused_total{reason="connect_pending"}')).toBe(1);
    expect(hub.io.of('/').sockets.size).toBe(1);
    ws.close();
  });

  test("an upgrade's 101 answer and its open packet leave the hub in one write", async () => {
    hub = await startTestHub();
    // The stream calls under the hub's socket: one writev of all the buffers, or a write each.
    const writes: string[] = [];
    hub.httpServer.once('connection', (socket: TcpSocket) => {
      const stream = socket as unknown as { _write: (...args: unknown[]) => void; _writev: (...args: unknown[]) => void };
      const write = stream._write;
      const writev = stream._writev;
      stream._write = function (...args: unknown[]) {
        writes.push('write');
        return write.apply(this, args);
      };
      stream._writev = function (...args: unknown[]) {
        writes.push(`writev of ${(args[0] as unknown[]).length}`);
        return writev.apply(this, args);
      };
    });
    const raw = await openRaw(hub);
    try {
      const head = await sendUpgrade(raw);
      expect(head.split('\r\n', 1)[0]).toBe('HTTP/1.1 101 Switching Protocols');
      await eventually(
        () => writes.length > 0,
        () => 'no write yet',
      );
      // The 101 head, the open packet's frame header and its payload.
      expect(writes).toEqual(['writev of 3']);
    } finally {
      raw.destroy();
    }
  });

  test('an upgrade engine.io refuses (MAX_CONNECTIONS) still gets its answer, uncorked', async () => {
    hub = await startTestHub({ MAX_CONNECTIONS: '1' });
    await connectTracker(hub, { projectKey: projectKey('pacingcap'), sessionId: '9100', tabId: 't1' });
    const raw = await openRaw(hub);
    try {
      const response = await sendUpgrade(raw);
      expect(response.split('\r\n', 1)[0]).toBe('HTTP/1.1 400 Bad Request');
      await eventually(
        () => raw.readableEnded || raw.destroyed,
        () => 'the refused socket is still open',
      );
    } finally {
      raw.destroy();
    }
  });

  test('past MAX_QUEUED_UPGRADES an upgrade is answered 503 TOO_MANY_CONNECTIONS at once', async () => {
    hub = await startTestHub({ MAX_QUEUED_UPGRADES: '1' });
    const first = await openRaw(hub);
    const second = await openRaw(hub);
    try {
      const pending = [sendUpgrade(first), sendUpgrade(second)];
      // Both requests reach the kernel while the hub cannot run, so it reads them in one poll: the
      // second finds the first still waiting for its turn.
      holdLoop(50);
      const responses = await Promise.all(pending);
      const statuses = responses.map((r) => r.split('\r\n', 1)[0]);
      expect(statuses.sort()).toEqual(['HTTP/1.1 101 Switching Protocols', 'HTTP/1.1 503 Service Unavailable']);
      const refused = responses.find((r) => r.startsWith('HTTP/1.1 503')) ?? '';
      expect(JSON.parse(refused.slice(refused.indexOf('\r\n\r\n') + 4))).toMatchObject({ code: 'TOO_MANY_CONNECTIONS' });
      expect(await metricValue(hub, 'hub_connects_refused_total{reason="upgrade_queue_full"}')).toBe(1);
    } finally {
      first.destroy();
      second.destroy();
    }
  });
});

/**
 * A bare HTTP server with pacing and a recording 'upgrade' listener, and one client connected to
 * it whose upgrade request will wait behind five busy jobs (one per turn: the loop polls I/O
 * several times before its turn).
 */
async function pacedServerWithQueuedClient(onError: (error: unknown) => void = () => undefined) {
  const upgraded: string[] = [];
  const http = createServer();
  http.on('upgrade', (req) => upgraded.push(req.url ?? ''));
  const pacing = paceLifecycle(http, { turnMs: 1, maxQueuedUpgrades: 10, onQueueFull: () => undefined, onError });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const address = http.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const socket = await new Promise<TcpSocket>((resolve) => {
    const s = tcpConnect(port, '127.0.0.1', () => resolve(s));
  });
  for (let i = 0; i < 5; i++) pacing.defer(() => holdLoop(5));
  const response = sendUpgrade(socket);
  await eventually(() => pacing.queuedUpgrades === 1, () => `queued upgrades: ${pacing.queuedUpgrades}`);
  return { http, pacing, socket, response, upgraded };
}

describe('paceLifecycle on a bare HTTP server', () => {
  let server: HttpServer | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
    server = undefined;
  });

  test('a client that resets its connection while its upgrade waits is skipped, and its error is not fatal', async () => {
    const errors: unknown[] = [];
    const { http, pacing, socket, upgraded } = await pacedServerWithQueuedClient((e) => errors.push(e));
    server = http;
    socket.resetAndDestroy();
    await eventually(() => pacing.queued === 0, () => `queued jobs: ${pacing.queued}`);
    expect(upgraded).toEqual([]);
    expect(errors).toEqual([]);
  });

  test('an upgrade still waiting when the server stops listening is closed, not served', async () => {
    const { http, response, upgraded } = await pacedServerWithQueuedClient();
    server = http;
    http.close();
    // The client sees its connection closed without an answer.
    expect(await response).toBe('');
    expect(upgraded).toEqual([]);
  });
});

test('a client that keeps sending after its close frame is cut off, not held without end', async () => {
  const http = createServer();
  const delivered: Buffer[] = [];
  const served: TcpSocket[] = [];
  http.on('upgrade', (_req, socket: TcpSocket) => {
    served.push(socket);
    socket.on('data', (chunk: Buffer) => delivered.push(chunk));
    socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
  });
  const pacing = paceLifecycle(http, { turnMs: 1, maxQueuedUpgrades: 10, onQueueFull: () => undefined, onError: () => undefined });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const address = http.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const client = await new Promise<TcpSocket>((resolve) => {
    const s = tcpConnect(port, '127.0.0.1', () => resolve(s));
  });
  client.on('error', () => undefined);
  try {
    await sendUpgrade(client);
    const mask = Buffer.from([1, 2, 3, 4]);
    const frame = (opcode: number, payload: Buffer) => Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length]), mask, Buffer.from(payload.map((b, k) => b ^ (mask[k % 4] as number)))]);
    // Busy jobs keep the queue one turn behind, so every read after the close frame waits behind it;
    // one frame per loop iteration, each read on its own.
    for (let k = 0; k < 3 * MAX_HELD_READS; k++) pacing.defer(() => holdLoop(3));
    client.write(frame(0x8, Buffer.alloc(0)));
    for (let k = 0; k < 2 * MAX_HELD_READS && !client.destroyed && served[0]?.destroyed !== true; k++) {
      await new Promise((resolve) => setImmediate(resolve));
      client.write(frame(0x1, Buffer.from('2')));
    }
    await eventually(() => served[0]?.destroyed === true, () => `held reads delivered so far: ${delivered.length}`);
    // Cut off with the reads still held: none of them reached the listener.
    expect(delivered).toHaveLength(0);
  } finally {
    client.destroy();
    await new Promise((resolve) => http.close(resolve));
  }
});

describe('endsWithClientClose', () => {
  const mask = Buffer.from([9, 8, 7, 6]);
  const frame = (first: number, payload: Buffer, masked = true) =>
    Buffer.concat([Buffer.from([first, (masked ? 0x80 : 0) | payload.length]), masked ? mask : Buffer.alloc(0), Buffer.from(payload.map((b, i) => (masked ? b ^ (mask[i % 4] as number) : b)))]);
  const text = (value: string) => frame(0x81, Buffer.from(value));
  const close = (code = 1000) => frame(0x88, Buffer.from([code >> 8, code & 0xff]));

  it('finds a close frame that ends the read, alone or after other frames', () => {
    expect(endsWithClientClose(close())).toBe(true);
    expect(endsWithClientClose(Buffer.concat([text('41'), close(1001)]))).toBe(true);
  });

  it('leaves alone data, a close frame followed by more, a cut frame and an unmasked frame', () => {
    expect(endsWithClientClose(text('42["UPDATE_SESSION",{}]'))).toBe(false);
    expect(endsWithClientClose(Buffer.concat([close(), text('2')]))).toBe(false);
    expect(endsWithClientClose(close().subarray(0, 5))).toBe(false);
    expect(endsWithClientClose(frame(0x88, Buffer.from([3, 232]), false))).toBe(false);
    expect(endsWithClientClose('not a buffer')).toBe(false);
  });
});
