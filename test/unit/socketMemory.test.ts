/** The listener-table compaction applied to every connected socket: the emitter must behave as before. */
import { EventEmitter } from 'node:events';
import { checkSocketInternals, compactListeners, compactSocket, internalsMismatch, readSocketInternals, socketTrimming } from '../../src/live/socketMemory';

describe('compactListeners', () => {
  const SYMBOL_EVENT = Symbol('monitor');

  function emitterWithListeners(calls: string[]) {
    const emitter = new EventEmitter();
    const onMessage = (x: unknown) => calls.push(`message:${String(x)}`);
    const onMessageToo = (x: unknown) => calls.push(`message2:${String(x)}`);
    const onMessageThree = () => calls.push('message3');
    emitter.on('message', onMessage);
    emitter.on('message', onMessageToo);
    emitter.on('message', onMessageThree);
    emitter.once('close', () => calls.push('close'));
    emitter.on(SYMBOL_EVENT, () => calls.push('symbol'));
    emitter.on('gone', () => calls.push('gone'));
    emitter.removeAllListeners('gone');
    return { emitter, onMessageToo };
  }

  it('keeps every listener, symbol-named and once listeners included, in order', () => {
    const calls: string[] = [];
    const { emitter } = emitterWithListeners(calls);
    const before = emitter.eventNames().map((name) => [name, emitter.rawListeners(name)] as const);
    const table = (emitter as unknown as { _events: object })._events;
    compactListeners(emitter);
    expect((emitter as unknown as { _events: object })._events).not.toBe(table);
    expect(Object.getPrototypeOf((emitter as unknown as { _events: object })._events)).toBeNull();
    expect(emitter.eventNames().map((name) => [name, emitter.rawListeners(name)] as const)).toEqual(before);

    emitter.emit('message', 1);
    emitter.emit('close');
    emitter.emit('close');
    emitter.emit(SYMBOL_EVENT);
    emitter.emit('toString');
    expect(calls).toEqual(['message:1', 'message2:1', 'message3', 'close', 'symbol']);
    expect(emitter.listenerCount('close')).toBe(0);
  });

  it('leaves listeners addable and removable afterwards', () => {
    const calls: string[] = [];
    const { emitter, onMessageToo } = emitterWithListeners(calls);
    compactListeners(emitter);
    emitter.removeListener('message', onMessageToo);
    emitter.on('later', () => calls.push('later'));
    emitter.emit('message', 2);
    emitter.emit('later');
    expect(calls).toEqual(['message:2', 'message3', 'later']);
    emitter.removeAllListeners();
    expect(emitter.eventNames()).toEqual([]);
  });

  it('copies arrays of listeners, so the emitter and the old table no longer share one', () => {
    const { emitter } = emitterWithListeners([]);
    const table = (emitter as unknown as { _events: Record<string, unknown> })._events;
    compactListeners(emitter);
    const compact = (emitter as unknown as { _events: Record<string, unknown> })._events;
    expect(compact.message).toEqual(table.message);
    expect(compact.message).not.toBe(table.message);
  });

  it('ignores an object without a listener table', () => {
    const plain = {};
    compactListeners(plain);
    compactListeners(undefined);
    expect(plain).toEqual({});
  });
});

describe('checkSocketInternals', () => {
  const installed = readSocketInternals();
  const logged: Array<{ obj: object; msg: string }> = [];
  const logger = { warn: (obj: object, msg: string) => logged.push({ obj, msg }) };

  afterEach(() => {
    // Back to what the installed libraries say (on for the pinned versions).
    expect(checkSocketInternals(logger, readSocketInternals)).toBe(true);
    logged.length = 0;
  });

  it('finds every shape in the pinned, installed versions', () => {
    expect(internalsMismatch(installed)).toBeUndefined();
    expect(checkSocketInternals(logger)).toBe(true);
    expect(socketTrimming()).toBe(true);
    expect(logged).toEqual([]);
  });

  it('names what is missing when a library changed', () => {
    const changed = { ...installed, sources: { ...installed.sources, engineServer: installed.sources.engineServer.replaceAll('isInitialRequest', 'isFirst') } };
    expect(internalsMismatch(changed)).toBe("not found in the installed libraries: the upgrade's headers hook");
    expect(internalsMismatch({ ...installed, sources: { ...installed.sources, ioSocket: '' } })).toMatch(/catch-all listeners/);
    expect(internalsMismatch({ ...installed, eventTable: undefined })).toMatch(/_events/);
  });

  it('switches the trimming off with one log line, and then leaves sockets alone', () => {
    expect(checkSocketInternals(logger, () => ({ ...installed, eventTable: undefined }))).toBe(false);
    expect(socketTrimming()).toBe(false);
    expect(logged).toHaveLength(1);
    expect(logged[0]?.msg).toMatch(/trimming switched off/);

    // A stand-in with the shapes compactSocket touches: nothing of it changes while off.
    const socket = new EventEmitter() as EventEmitter & { connected: boolean; conn: EventEmitter & { cleanupFn: unknown[] }; client: object; _anyListeners: unknown[] };
    socket.on('x', () => undefined);
    socket.connected = true;
    socket.conn = Object.assign(new EventEmitter(), { cleanupFn: [() => undefined] });
    socket.client = {};
    socket._anyListeners = [() => undefined];
    const table = (socket as unknown as { _events: object })._events;
    const { cleanupFn } = socket.conn;
    const any = socket._anyListeners;
    compactSocket(socket as unknown as Parameters<typeof compactSocket>[0]);
    expect((socket as unknown as { _events: object })._events).toBe(table);
    expect(socket.conn.cleanupFn).toBe(cleanupFn);
    expect(socket._anyListeners).toBe(any);

    // On again, the same stand-in is compacted (the test can fail).
    expect(checkSocketInternals(logger)).toBe(true);
    compactSocket(socket as unknown as Parameters<typeof compactSocket>[0]);
    expect((socket as unknown as { _events: object })._events).not.toBe(table);
    expect(socket._anyListeners).not.toBe(any);
  });
});
