/**
 * Frees what the HTTP upgrade leaves behind on a Socket.IO socket once its handshake is parsed.
 * Per connection this is ~3 KiB of heap (the request with its headers and URL, which carries the
 * tracker's whole sessionInfo, and the handshake's copies of them): at tens of thousands of tabs,
 * the largest item the hub can drop.
 */
import type { Socket } from 'socket.io';

interface RawSocket {
  rawListeners(event: string): ((...args: unknown[]) => void)[];
  removeListener(event: string, listener: (...args: unknown[]) => void): void;
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

export function releaseHandshake(socket: Socket): void {
  // Socket.IO types `handshake` read-only; it is a plain property that nothing reads after connect.
  (socket as { handshake: Socket['handshake'] }).handshake = RELEASED_HANDSHAKE;
  const conn = socket.conn as unknown as { request?: unknown; transport?: { socket?: { _socket?: RawSocket } } };
  conn.request = undefined;
  // engine.io's WebSocketResponse keeps the upgrade request alive through a once('close') listener
  // on the TCP socket, only to re-emit 'close' for engine middlewares; the hub installs none.
  const raw = conn.transport?.socket?._socket;
  if (!raw) return;
  for (const wrapper of raw.rawListeners('close')) {
    const listener = (wrapper as { listener?: (...args: unknown[]) => void }).listener ?? wrapper;
    if (String(listener).includes('this.emit("close")')) raw.removeListener('close', listener);
  }
}
