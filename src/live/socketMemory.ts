/**
 * Frees what the HTTP upgrade leaves behind on a Socket.IO socket once its handshake is parsed.
 * Per connection this is ~3 KiB of heap (the request with its headers and URL, which carries the
 * tracker's whole sessionInfo, and the handshake's copies of them): at tens of thousands of tabs,
 * the largest item the hub can drop.
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
