/** The listener-table compaction applied to every connected socket: the emitter must behave as before. */
import { EventEmitter } from 'node:events';
import { compactListeners } from '../../src/live/socketMemory';

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
