/**
 * What a connected Socket.IO socket costs for its whole life, cut down in two steps:
 * - `releaseHandshake` frees what the HTTP upgrade leaves behind once the handshake is parsed:
 *   ~3 KiB of heap per connection (the request with its headers and URL, which carries the
 *   tracker's whole sessionInfo, and the handshake's copies of them);
 * - `compactSocket`, once the hub's handlers are attached, rebuilds the listener tables and arrays
 *   the libraries grew while connecting: ~1 KiB more.
 * At tens of thousands of tabs these are the largest items the hub can drop (docs/performance.md).
 */
import type { Socket } from 'socket.io';

/**
 * What a socket's `handshake` becomes: one shared, frozen object instead of per-socket copies of
 * the URL (the whole query, sessionInfo included), headers, query, auth and a date string. The
 * hub reads none of them after the connection handler; the client address stays on `conn`.
 */
const RELEASED_HANDSHAKE: Socket['handshake'] = Object.freeze({
  headers: Object.freeze({}),
  time: '',
  address: '',
  xdomain: false,
  secure: false,
  issued: 0,
  url: '',
  query: Object.freeze({}),
  auth: Object.freeze({}),
});

type Listener = (...args: unknown[]) => void;

interface Emitter {
  rawListeners(event: string): Listener[];
  removeListener(event: string, listener: Listener): void;
}

/** Removes the listeners of `event` whose function (a `once` wrapper's included) matches `test`. */
function removeListeners(emitter: Emitter | undefined, event: string, test: (fn: Listener) => boolean): void {
  if (!emitter) return;
  for (const wrapper of emitter.rawListeners(event)) {
    const listener = (wrapper as { listener?: Listener }).listener ?? wrapper;
    if (test(listener)) emitter.removeListener(event, listener);
  }
}

export function releaseHandshake(socket: Socket): void {
  // Socket.IO types `handshake` read-only; it is a plain property that nothing reads after connect.
  (socket as { handshake: Socket['handshake'] }).handshake = RELEASED_HANDSHAKE;
  const conn = socket.conn as unknown as {
    request?: unknown;
    transport?: Emitter & { name?: string; socket?: Emitter & { _socket?: Emitter } };
  };
  conn.request = undefined;
  const transport = conn.transport;
  // Only a WebSocket transport is done with its upgrade: a polling one still answers requests.
  if (transport?.name !== 'websocket') return;
  // engine.io's WebSocketResponse keeps the upgrade request alive through a once('close') listener
  // on the TCP socket, only to re-emit 'close' for engine middlewares; the hub installs none.
  removeListeners(transport.socket?._socket, 'close', (fn) => String(fn).includes('this.emit("close")'));
  // The upgrade's response-headers hook, and an error handler engine.io removes only when a polling
  // client upgrades: a client that opened with WebSocket keeps both for its whole life. The
  // transport's own error handler stays.
  removeListeners(transport, 'headers', (fn) => String(fn).includes('isInitialRequest'));
  const ws = transport.socket;
  if (ws && ws.rawListeners('error').length > 1) removeListeners(ws, 'error', (fn) => fn.name === 'onUpgradeError');
}

/** What {@link compactListeners} reaches into: Node's `EventEmitter` listener table. */
interface ListenerTable {
  _events?: Record<string | symbol, unknown>;
}

/**
 * Rebuilds an emitter's listener table as a fast object of the same listeners. Node creates it
 * with a null prototype, which V8 keeps in dictionary mode: 180–470 B each for the 3–5 events a
 * connection's emitters hold, against ~60 B as a fast object. Arrays of several listeners are
 * copied to their exact length (one grown by `push` keeps room for 16 more). Adding or removing a
 * listener later works as before; only this copy's layout differs.
 */
export function compactListeners(emitter: object | undefined): void {
  const table = (emitter as ListenerTable | undefined)?._events;
  if (!table || typeof table !== 'object') return;
  const compact: Record<string | symbol, unknown> = {};
  for (const event of Reflect.ownKeys(table)) {
    const listeners = table[event];
    compact[event] = Array.isArray(listeners) ? listeners.slice() : listeners;
  }
  // Set after the properties are in: an object created with a null prototype starts in dictionary mode.
  Object.setPrototypeOf(compact, null);
  (emitter as ListenerTable)._events = compact;
}

/** Replaces `holder[key]`, an array grown by `push` (capacity 17 for one item), by an exact copy. */
function trimArray(holder: object | undefined, key: string): void {
  const record = holder as Record<string, unknown> | undefined;
  const value = record?.[key];
  if (record && Array.isArray(value)) record[key] = value.slice();
}

/**
 * Shrinks what a connected socket keeps for its whole life once the hub has attached its
 * handlers: the listener tables of the Socket.IO socket, the engine.io socket, its transport and
 * the `ws` WebSocket, and the listener arrays grown by `push` (Socket.IO's catch-all listeners,
 * engine.io's cleanup functions, the packet decoder's callbacks). ~1 KiB per connection; see
 * docs/performance.md. Everything it touches is optional: a missing or renamed internal is left alone.
 */
export function compactSocket(socket: Socket): void {
  if (!socket.connected) return;
  const conn = socket.conn as unknown as { transport?: { socket?: object } };
  compactListeners(socket);
  compactListeners(conn);
  compactListeners(conn.transport);
  compactListeners(conn.transport?.socket);
  trimArray(socket, '_anyListeners');
  trimArray(conn, 'cleanupFn');
  const decoder = (socket.client as unknown as { decoder?: { _callbacks?: object } }).decoder;
  trimArray(decoder?._callbacks, '$decoded');
}
