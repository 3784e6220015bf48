/**
 * What the hub has queued for a socket and not yet handed to the kernel, and the refusals it
 * sends on the Socket.IO handshake (`connect_error` with `data: {code, message}`).
 */
import type { Socket } from 'socket.io';
import type { ErrorCode } from '../errors';

/**
 * Bytes a socket has queued and not yet handed to the kernel: engine.io's write buffer (packets
 * waiting while the transport is busy) plus the WebSocket's own buffered amount.
 */
export function pendingBytes(socket: Socket): number {
  const conn = socket.conn as unknown as { writeBuffer?: { data?: unknown }[]; transport?: { socket?: { bufferedAmount?: number } } };
  let bytes = conn.transport?.socket?.bufferedAmount ?? 0;
  for (const packet of conn.writeBuffer ?? []) {
    const data = packet.data;
    bytes += typeof data === 'string' ? data.length : data instanceof Uint8Array ? data.byteLength : 64;
  }
  return bytes;
}

/** A handshake refusal: Socket.IO hands `data` to the client's `connect_error` as `err.data`. */
export type RefusalError = Error & { data: { code: ErrorCode; message: string } };

export function refusalError(code: ErrorCode, message: string): RefusalError {
  return Object.assign(new Error(message), { data: { code, message } });
}
