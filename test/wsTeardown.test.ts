/**
 * The teardown guard on ws's Receiver (src/live/wsTeardown.ts): installed on the copy engine.io
 * uses, a bare second end() is a no-op exactly as Node's own, other calls keep Node's behaviour,
 * and a hub whose tabs all drop abruptly (TCP destroyed, no close frame) still empties its index.
 */
import { createRequire } from 'node:module';
import { Writable } from 'node:stream';
import { endUnlessEnded, installReceiverEndGuard } from '../src/live/wsTeardown';
import type { Hub } from '../src/server';
import { connectTracker, newSessionId, projectKey, startLiveHub } from './support/live';
import { eventually } from './support/wait';

type ReceiverCtor = new (options?: object) => Writable;
const engineWs = createRequire(require.resolve('engine.io'))('ws') as { Receiver: ReceiverCtor };

function finished(stream: Writable): Promise<void> {
  return new Promise((resolve) => stream.once('finish', () => resolve()));
}

describe('ws Receiver end guard', () => {
  test('is installed on the Receiver of the ws that engine.io loads, once', () => {
    const first = installReceiverEndGuard();
    expect(first).toBe(engineWs.Receiver);
    expect(engineWs.Receiver.prototype.end).toBe(endUnlessEnded);
    expect(installReceiverEndGuard()).toBe(first);
  });

  test('a second bare end() returns the stream, emits nothing more, and builds no error', async () => {
    installReceiverEndGuard();
    const receiver = new engineWs.Receiver({ isServer: true });
    let finishes = 0;
    const errors: unknown[] = [];
    receiver.on('finish', () => (finishes += 1));
    receiver.on('error', (err) => errors.push(err));
    const done = finished(receiver);
    receiver.end();
    await done;
    // Node's end() is where the error would be built: a guarded second end() never reaches it.
    const nodeEnd = jest.spyOn(Writable.prototype, 'end');
    try {
      expect(receiver.end()).toBe(receiver);
      expect(nodeEnd).not.toHaveBeenCalled();
    } finally {
      nodeEnd.mockRestore();
    }
    await new Promise((resolve) => setImmediate(resolve));
    expect(finishes).toBe(1);
    expect(errors).toEqual([]);
  });

  test('end() with a callback on a finished stream still reports ERR_STREAM_ALREADY_FINISHED, as Node does', async () => {
    installReceiverEndGuard();
    const receiver = new engineWs.Receiver({ isServer: true });
    const done = finished(receiver);
    receiver.end();
    await done;
    const err = await new Promise<Error | null | undefined>((resolve) => receiver.end((e?: Error | null) => resolve(e)));
    expect(err).toMatchObject({ code: 'ERR_STREAM_ALREADY_FINISHED' });
  });

  test('a first end() still ends the stream', async () => {
    const receiver = new engineWs.Receiver({ isServer: true });
    const done = finished(receiver);
    const nodeEnd = jest.spyOn(Writable.prototype, 'end');
    try {
      expect(endUnlessEnded.call(receiver)).toBe(receiver);
      expect(nodeEnd).toHaveBeenCalledTimes(1);
    } finally {
      nodeEnd.mockRestore();
    }
    await done;
    expect(receiver.writableFinished).toBe(true);
  });
});

describe('a hub with the guard, all tabs dropped abruptly', () => {
  let hub: Hub;
  beforeAll(async () => {
    hub = await startLiveHub();
  });
  afterAll(async () => {
    await hub.shutdown();
  });

  test('every session leaves the index and the hub keeps serving', async () => {
    const pk = projectKey('teardown');
    const sessions = Array.from({ length: 20 }, () => newSessionId());
    const peers = await Promise.all(sessions.map((sessionId) => connectTracker(hub, { projectKey: pk, sessionId, tabId: 't1' })));
    await eventually(() => sessions.every((sessionId) => hub.ctx.index.room(pk, sessionId) !== undefined));
    for (const peer of peers) {
      const tcp = (peer.socket.io.engine.transport as unknown as { ws?: { _socket?: { destroy(): void } } }).ws?._socket;
      if (!tcp) throw new Error('no TCP socket under the client');
      tcp.destroy();
    }
    await eventually(() => sessions.every((sessionId) => hub.ctx.index.room(pk, sessionId) === undefined), () => 'sessions still in the index');
    const again = await connectTracker(hub, { projectKey: pk, sessionId: sessions[0] as string, tabId: 't1' });
    expect(hub.ctx.index.room(pk, sessions[0] as string)?.tabs.length).toBe(1);
    again.socket.disconnect();
  });
});
