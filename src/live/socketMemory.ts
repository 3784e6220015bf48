/**
 * What a connected Socket.IO socket costs for its whole life, cut down in two steps:
 * - `releaseHandshake` frees what the HTTP upgrade leaves behind once the handshake is parsed:
 *   the request with its headers and URL, which carries the
 *   tracker's whole sessionInfo, and the handshake's copies of them);
 * - `compactSocket`, once the hub's handlers are attached, rebuilds the listener tables and arrays
 *   the libraries grew while connecting.
 * At tens of thousands of tabs these are the largest items the hub can drop (figures:
 * docs/performance.md, "Figures behind choices in the code").
 *
 * Both reach into internals of socket.io, engine.io, ws and Node's EventEmitter (versions pinned
 * exactly in package.json). `checkSocketInternals` runs once when the hub starts: when the shapes
 * it relies on are not there, the reaching-in is switched off (one log line) and only the public
 * part stays (the handshake and the request released); the hub then works as before, with more
 * memory per connection.
 */
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Socket } from 'socket.io';

/** What the trimming relies on, read from the installed libraries (file texts, an emitter's table). */
export interface SocketInternals {
  /** engine.io's build/server.js, build/socket.js; socket.io's dist/socket.js; the emitter the parser uses. */
  sources: { engineServer: string; engineSocket: string; ioSocket: string; componentEmitter: string };
  /** `_events` of a fresh Node EventEmitter. */
  eventTable: unknown;
}

/** The marks each shape leaves in the library text, and what the trimming does with it. */
const EXPECTED: Array<{ source: keyof SocketInternals['sources']; mark: string; use: string }> = [
  { source: 'engineServer', mark: 'socket.once("close", () => this.emit("close"))', use: "the upgrade's close re-emitter" },
  { source: 'engineServer', mark: 'isInitialRequest', use: "the upgrade's headers hook" },
  { source: 'engineServer', mark: 'function onUpgradeError', use: "the upgrade's error handler" },
  { source: 'engineSocket', mark: 'this.cleanupFn = [', use: "engine.io's cleanup array" },
  { source: 'ioSocket', mark: 'this._anyListeners', use: "Socket.IO's catch-all listeners" },
  { source: 'componentEmitter', mark: "this._callbacks['$' + event]", use: "the decoder's callbacks" },
];

/** Reads the installed libraries' shapes (I/O: four small files, once per start). */
export function readSocketInternals(): SocketInternals {
  const read = (path: string): string => {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return '';
    }
  };
  const resolved = (id: string): string => {
    try {
      return require.resolve(id);
    } catch {
      return '';
    }
  };
  const engine = dirname(resolved('engine.io'));
  return {
    sources: {
      engineServer: read(join(engine, 'server.js')),
      engineSocket: read(join(engine, 'socket.js')),
      ioSocket: read(join(dirname(resolved('socket.io')), 'socket.js')),
      componentEmitter: read(resolved('@socket.io/component-emitter')),
    },
    eventTable: (new EventEmitter() as unknown as { _events?: unknown })._events,
  };
}

/** Why the trimming cannot run on these internals, or undefined when every shape is there. */
export function internalsMismatch(found: SocketInternals): string | undefined {
  if (found.eventTable === null || typeof found.eventTable !== 'object') return "Node's EventEmitter has no _events table";
  const missing = EXPECTED.filter((e) => !found.sources[e.source].includes(e.mark)).map((e) => e.use);
  return missing.length > 0 ? `not found in the installed libraries: ${missing.join(', ')}` : undefined;
}

let trimming = true;

/** Whether the internals part of the trimming runs (see {@link checkSocketInternals}). */
export function socketTrimming(): boolean {
  return trimming;
}

/**
 * Checks the internals once (at start) and switches the reaching-in off, with one warning, when
 * they differ from what the trimming expects. Returns whether the trimming runs.
 */
export function checkSocketInternals(logger: { warn(obj: object, msg: string): void }, read: () => SocketInternals = readSocketInternals): boolean {
  const reason = internalsMismatch(read());
  trimming = reason === undefined;
  if (reason) logger.warn({ reason }, 'socket memory trimming switched off: Socket.IO internals differ from the pinned versions (each connection keeps more memory)');
  return trimming;
}

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
  if (!trimming) return;
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
 * with a null prototype, which V8 keeps in dictionary mode: several times the size of a fast
 * object for the 3–5 events a connection's emitters hold. Arrays of several listeners are
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
 * engine.io's cleanup functions, the packet decoder's callbacks); figures in docs/performance.md. Everything it touches is optional: a missing or renamed internal is left alone.
 */
export function compactSocket(socket: Socket): void {
  if (!trimming || !socket.connected) return;
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
