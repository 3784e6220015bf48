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
 * than `maxReading` new connections are waiting for their first request, in the order they were
 * accepted. A connection stops counting when its first request (an upgrade or a plain HTTP
 * request) is read or when it closes.
 *
 * Idle connections must not lock the others out: a connection that held its place for
 * `expireMs` without sending a request, while others wait, is paused again and queued with the
 * connections that were slow before, which get a place only when no new connection waits. So a
 * new connection waits behind other new ones and at most one expiry, however many idle
 * connections a client holds open; the slow ones take turns among themselves. A poll phase reads
 * at most `maxReading` first requests.
 */
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

export interface FirstReadOptions {
  /** Connections read at once while they have not sent their first request. */
  maxReading: number;
  /** After this long without a first request, while others wait, a connection is paused again and queued with the slow ones (ms). */
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
  const holding = new Map<Socket, number>();
  /** Connections never read from yet, in accept order: they get places first. */
  const fresh = new SocketQueue();
  /** Connections whose place expired: they get places when no new connection waits. */
  const slow = new SocketQueue();
  let timer: NodeJS.Timeout | undefined;
  let admitting = false;
  let closed = false;

  const waitingCount = (): number => fresh.length + slow.length;

  function resume(socket: Socket): void {
    holding.set(socket, now());
    socket.once('close', onClose);
    socket.resume();
  }

  function onClose(this: Socket): void {
    release(this);
  }

  function release(socket: Socket): void {
    if (!holding.delete(socket)) return;
    socket.off('close', onClose);
    fill(true);
  }

  /** `inPollPhase`: called from a read or a close, where admitting waits for the check phase (see admit). */
  function fill(inPollPhase: boolean): void {
    if (closed) return;
    if (waitingCount() > 0) {
      const at = now();
      for (const [socket, since] of holding) {
        if (at - since < options.expireMs) break;
        holding.delete(socket);
        socket.off('close', onClose);
        // Paused again: left reading, it could send with a crowd later and be read with them in one poll phase.
        if (!socket.destroyed) {
          socket.pause();
          slow.push(socket);
        }
      }
    }
    if (!inPollPhase) admit();
    else if (!admitting) {
      admitting = true;
      setImmediate(admit);
    }
  }

  /**
   * Never run in the poll phase that freed the places: a socket read from before and paused again
   * is still registered with epoll, and resumed there it could be read in that same phase (and
   * free a place for the next, and so on).
   */
  function admit(): void {
    admitting = false;
    if (closed) return;
    while (holding.size < options.maxReading) {
      const socket = fresh.shift() ?? slow.shift();
      if (socket === undefined) break;
      if (!socket.destroyed) resume(socket);
    }
    armExpiry();
  }

  /** While connections wait behind full places, the oldest place expires on time even if nothing else happens. */
  function armExpiry(): void {
    if (timer || waitingCount() === 0) return;
    const oldest = holding.values().next();
    const dueIn = oldest.done ? 0 : Math.max(0, oldest.value + options.expireMs - now());
    timer = setTimeout(() => {
      timer = undefined;
      fill(false);
    }, dueIn + 1);
    timer.unref();
  }

  (server as HttpServer & { pauseOnConnect: boolean }).pauseOnConnect = true;
  server.on('connection', (socket: Socket) => {
    if (closed) socket.resume();
    else if (admitDecision(holding.size, fresh.length, options.maxReading) === 'read') resume(socket);
    else {
      fresh.push(socket);
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
    for (const queue of [fresh, slow]) {
      for (let socket = queue.shift(); socket !== undefined; socket = queue.shift()) if (!socket.destroyed) socket.resume();
    }
  }

  return {
    get waiting() {
      return waitingCount();
    },
    get reading() {
      return holding.size;
    },
    close,
  };
}

/** Paused sockets in order: a queue drained from its front without shifting the array each time. */
class SocketQueue {
  private items: (Socket | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(socket: Socket): void {
    this.items.push(socket);
  }

  shift(): Socket | undefined {
    if (this.head === this.items.length) return undefined;
    const socket = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head === this.items.length) {
      this.items.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items.splice(0, this.head);
      this.head = 0;
    }
    return socket;
  }
}
