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

export function releaseHandshake(socket: Socket): void {
  socket.handshake.headers = {};
  socket.handshake.query = {};
  socket.handshake.auth = {};
  // The URL carries the whole query (sessionInfo included); the time is a ~60-character date string.
  socket.handshake.url = '';
  socket.handshake.time = '';
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
