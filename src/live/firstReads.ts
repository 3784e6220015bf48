/**
 * New connections read for their first request a few at a time.
 *
 * In a restart storm the hub accepts connections faster than the clients, busy with thousands of
 * connects of their own, write their upgrade requests; the requests then arrive together, and
 * libuv reads every one that is ready in one poll phase (thousands at 19,000 tabs: the parse, the
 * request object and the handover to the upgrade queue for each, with the scavenges they bring).
 * The upgrades are paced already (lifecyclePacing.ts), but only once they have been read.
 *
 * Here a new connection starts paused (the server's `pauseOnConnect`) and is resumed when fewer
 * than `maxReading` connections are waiting for their first request, in the order they were
 * accepted. A poll phase then reads at most `maxReading` first requests. A connection stops
 * counting when its first request (an upgrade or a plain HTTP request) is read or when it closes.
 * One that has been read from for `expireMs` without sending a request while others wait is
 * paused again and goes behind them: idle connections hold a place only for that long at a time.
 */
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

/**
 * How long a connection read from may keep its place without sending its first request while
 * others wait (ms): connections opened and left idle then slow the others only a little.
 */
export const FIRST_READ_EXPIRE_MS = 100;

export interface FirstReadOptions {
  /** Connections read at once while they have not sent their first request. */
  maxReading: number;
  /** After this long without a first request, while others wait, a connection is paused again behind them (ms). */
  expireMs: number;
}

export interface FirstReads {
  /** Connections accepted and not yet read from. */
  readonly waiting: number;
  /** Connections read from that have not sent their first request. */
  readonly reading: number;
  close(): void;
}

/** What to do with a connection just accepted: read it now, or queue it behind the others. */
export function admitDecision(reading: number, waiting: number, maxReading: number): 'read' | 'wait' {
  return waiting === 0 && reading < maxReading ? 'read' : 'wait';
}

/**
 * Installs the gate on `server` (before it listens): every accepted connection goes through it.
 * Install it after the lifecycle pacing, so that its 'upgrade' listener frees the connection's
 * place in the poll phase that read the request, not in the upgrade's turn.
 */
export function gateFirstReads(server: HttpServer, options: FirstReadOptions): FirstReads {
  const now = (): number => performance.now();
  /** Sockets read from, with when they were resumed: insertion order is resume order, oldest first. */
  const reading = new Map<Socket, number>();
  const waiting: Socket[] = [];
  let head = 0;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const waitingCount = (): number => waiting.length - head;

  function resume(socket: Socket): void {
    reading.set(socket, now());
    socket.once('close', onClose);
    socket.resume();
  }

  function onClose(this: Socket): void {
    release(this);
  }

  function release(socket: Socket): void {
    if (!reading.delete(socket)) return;
    socket.off('close', onClose);
    fill();
  }

  function fill(): void {
    if (closed) return;
    const at = now();
    for (const [socket, since] of reading) {
      if (at - since < options.expireMs) break;
      reading.delete(socket);
      socket.off('close', onClose);
      // Paused again, behind the others: left reading, it could send with a crowd later and be
      // read with them in one poll phase.
      if (!socket.destroyed) {
        socket.pause();
        waiting.push(socket);
      }
    }
    while (reading.size < options.maxReading && head < waiting.length) {
      const socket = waiting[head] as Socket;
      waiting[head++] = undefined as unknown as Socket;
      if (!socket.destroyed) resume(socket);
    }
    if (head === waiting.length) {
      waiting.length = 0;
      head = 0;
    } else if (head >= 1024 && head * 2 >= waiting.length) {
      waiting.splice(0, head);
      head = 0;
    }
    armExpiry();
  }

  /** While connections wait behind full places, the oldest place expires on time even if nothing else happens. */
  function armExpiry(): void {
    if (timer || waitingCount() === 0) return;
    const oldest = reading.values().next();
    const dueIn = oldest.done ? 0 : Math.max(0, oldest.value + options.expireMs - now());
    timer = setTimeout(() => {
      timer = undefined;
      fill();
    }, dueIn + 1);
    timer.unref();
  }

  (server as HttpServer & { pauseOnConnect: boolean }).pauseOnConnect = true;
  server.on('connection', (socket: Socket) => {
    if (closed) socket.resume();
    else if (admitDecision(reading.size, waitingCount(), options.maxReading) === 'read') resume(socket);
    else {
      waiting.push(socket);
      armExpiry();
    }
  });
  server.on('request', (req: IncomingMessage) => release(req.socket as Socket));
  server.on('upgrade', (_req: IncomingMessage, socket: Socket) => release(socket));
  server.on('close', () => close());

  function close(): void {
    if (closed) return;
    closed = true;
    if (timer) clearTimeout(timer);
    timer = undefined;
    // Everything still waiting is read now: the server's own shutdown closes them as it sees fit.
    for (let i = head; i < waiting.length; i++) {
      const socket = waiting[i] as Socket;
      if (!socket.destroyed) socket.resume();
    }
    waiting.length = 0;
    head = 0;
  }

  return {
    get waiting() {
      return waitingCount();
    },
    get reading() {
      return reading.size;
    },
    close,
  };
}
