/**
 * What the hub has queued for a socket and not yet handed to the kernel, and the refusals it
 * sends on the Socket.IO handshake (`connect_error` with `data: {code, message}`).
 */
import type { Socket } from 'socket.io';
import type { HubContext } from '../context';
import { ErrorCode } from '../errors';

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

/** The refusal of a handshake while the hub (or its cluster view) is not ready, counted as every refusal is. */
export function notReady(ctx: Pick<HubContext, 'metrics' | 'refusals'>, message: string): RefusalError {
  ctx.metrics.connectsRefused.inc({ reason: 'not_ready' });
  ctx.refusals?.handshake('not_ready');
  return refusalError(ErrorCode.NOT_READY, message);
}

interface EngineConnection {
  readyState?: string;
  sendPacket(type: 'ping'): void;
  on(event: 'packet' | 'close', listener: (packet?: { type?: string }) => void): unknown;
  off(event: 'packet' | 'close', listener: (packet?: { type?: string }) => void): unknown;
}

/**
 * Whether a socket's peer still answers: an engine.io ping out of turn, answered by a pong (or by
 * any packet) within `timeoutMs`. A half-open connection (a tab that reloaded while its old socket
 * was cut without a FIN) answers nothing. An extra pong is harmless to engine.io's own heartbeat.
 */
export function probeAlive(socket: Socket, timeoutMs: number): Promise<boolean> {
  // One probe per holder at a time: duplicate handshakes for one tab (a hostile client can send
  // many) share it instead of each sending the holder a ping and adding listeners.
  const inFlight = probes.get(socket);
  if (inFlight) return inFlight;
  const probe = sendProbe(socket, timeoutMs).finally(() => probes.delete(socket));
  probes.set(socket, probe);
  return probe;
}

const probes = new WeakMap<Socket, Promise<boolean>>();

function sendProbe(socket: Socket, timeoutMs: number): Promise<boolean> {
  const conn = socket.conn as unknown as EngineConnection;
  if (conn.readyState !== 'open' || typeof conn.sendPacket !== 'function') return Promise.resolve(false);
  return new Promise((resolve) => {
    const finish = (alive: boolean): void => {
      clearTimeout(timer);
      conn.off('packet', onPacket);
      conn.off('close', onClose);
      resolve(alive);
    };
    const onPacket = (): void => finish(true);
    const onClose = (): void => finish(false);
    const timer = setTimeout(() => finish(false), timeoutMs);
    conn.on('packet', onPacket);
    conn.on('close', onClose);
    conn.sendPacket('ping');
  });
}
