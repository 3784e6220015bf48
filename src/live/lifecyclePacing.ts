/**
 * WebSocket upgrades and teardowns in bounded turns.
 *
 * A restart storm brings thousands of upgrades at once and a balancer failover ends thousands of
 * sockets at once. libuv hands such a burst to one loop turn: it accepts every pending connection
 * in one go, reads up to 48 × 1,024 ready sockets before it runs timers again, and runs the close
 * callbacks of every socket closed in that turn together. Done inline, the burst's whole CPU cost
 * (seconds at 19,000 sockets: docs/performance.md) is one stall for every other client of the
 * hub: /health, REST, relays, dashboards.
 *
 * Here the expensive part of each event waits in one queue run in turns of at most `turnMs`, with
 * I/O between turns. Connects and teardowns go before upgrades not yet started: a connection under
 * way is finished before new ones are let in (otherwise, in a storm of 19,000, every client's
 * connect would wait behind every other client's upgrade, and time out). The burst costs the same CPU, but everyone else waits at most about one turn,
 * and the listener keeps accepting (the kernel's accept queue drains at once, so fewer clients
 * fall back to SYN retries).
 *
 * - Upgrades: the server's 'upgrade' listeners (engine.io's, and the path-alias rewrite) run from
 *   the queue. A socket that closed while it waited is skipped.
 * - Connects: Socket.IO's CONNECT of the main namespace (the hub's handshake checks, the index
 *   update and the answer) waits in the same queue (`defer`, from a Socket.IO middleware).
 * - Teardowns: the peer's end of stream (or a read error) is read by libuv in the poll phase and
 *   handled from the queue (deferredEof.ts), as if the FIN had arrived a little later; the 'close'
 *   event of an upgraded socket is emitted from the queue too. A polite leave comes as data (a
 *   Socket.IO DISCONNECT and a WebSocket close frame): a read that ends with the client's close
 *   frame is emitted from the queue as well, with every later read of that socket behind it.
 *   Everything that runs on them (ws, engine.io, Socket.IO, the hub's leave) then runs in turns.
 * - First reads: a socket's first read after its upgrade (the CONNECT) is emitted from the queue,
 *   like a read held behind a close frame. The upgrade requests themselves are read a few at a
 *   time (firstReads.ts).
 */
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ErrorCode } from '../errors';
import { TurnBudgetQueue } from '../turnBudget';
import { deferEnds } from './deferredEof';
import { frameHeaderAt } from './wsFrames';

type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

export interface LifecyclePacingOptions {
  /** Longest run of queued upgrades and teardowns before I/O gets a turn (ms). */
  turnMs: number;
  /** Upgrades waiting at once; past it an upgrade is answered 503 at once. */
  maxQueuedUpgrades: number;
  /** Called when an upgrade is refused because the queue is full. */
  onQueueFull: () => void;
  onError: (error: unknown) => void;
  /** Told the jobs still waiting after each turn. */
  onTurnEnd?: (left: number) => void;
  /** engine.io's server: when given, an upgrade's answer and open packet are written together. */
  engine?: UpgradeOutcomes;
}

/** The two events of engine.io's server that end an upgrade: the connection is open, or refused. */
export interface UpgradeOutcomes {
  on(event: 'connection', listener: (connection: { request?: IncomingMessage }) => void): unknown;
  on(event: 'connection_error', listener: (error: { req?: IncomingMessage }) => void): unknown;
}

export interface LifecyclePacing {
  /** Upgrades waiting for their turn. */
  readonly queuedUpgrades: number;
  /** Jobs (upgrades, teardown events, deferred connects) waiting for their turn. */
  readonly queued: number;
  /** Sockets whose end (the peer's FIN or a reset) was queued so far (the loop-stall trace reads it, and `stats`). */
  readonly socketsEnded: number;
  /** Reads with data of upgraded sockets, and upgrade requests read, so far (the loop-stall trace reads them). */
  readonly socketReads: number;
  readonly upgradesRead: number;
  /** Sockets whose close frame (a polite leave) was read and queued so far. */
  readonly leavesRead: number;
  readonly stats: TurnBudgetQueue['stats'];
  /** False when Node's read internals differ from what deferredEof.ts expects: ends are then handled where libuv reads them. */
  readonly endsDeferred: boolean;
  /** Runs `job` in a later turn, ahead of the upgrades still waiting (in order with the teardowns). */
  defer(job: () => void): void;
}

const socketEmit = Socket.prototype.emit;

/** Reads of one socket held behind its close frame at once; a client that sends more after closing is cut off. */
export const MAX_HELD_READS = 16;

/**
 * Whether `chunk` is whole client WebSocket frames (masked) of which the last is a close frame: a
 * peer leaving politely (a Socket.IO DISCONNECT and the close frame usually come in one read). A
 * chunk that does not start on a frame boundary almost never parses to its exact end; if one does,
 * it is only handled a turn later, in order.
 */
export function endsWithClientClose(chunk: unknown): boolean {
  if (!Buffer.isBuffer(chunk)) return false;
  let offset = 0;
  let lastIsClose = false;
  while (offset < chunk.length) {
    const frame = frameHeaderAt(chunk, offset);
    if (frame === undefined || frame === 'too large' || !frame.masked) return false;
    offset = frame.end;
    // A close frame's payload is at most 125 bytes.
    lastIsClose = frame.opcode === 0x8 && frame.fin && frame.payloadLength <= 125;
  }
  return offset === chunk.length && lastIsClose;
}

const QUEUE_FULL_BODY = JSON.stringify({ code: ErrorCode.TOO_MANY_CONNECTIONS, message: 'too many WebSocket upgrades are waiting: retry shortly (MAX_QUEUED_UPGRADES)' });
const QUEUE_FULL_RESPONSE = `HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(QUEUE_FULL_BODY)}\r\n\r\n${QUEUE_FULL_BODY}`;

/**
 * Installs the pacing on `server`: call it after every 'upgrade' listener is attached (Socket.IO
 * and the path aliases). Later 'upgrade' listeners would run unpaced.
 */
export function paceLifecycle(server: HttpServer, options: LifecyclePacingOptions): LifecyclePacing {
  const queue = new TurnBudgetQueue(options.turnMs, options.onError, options.onTurnEnd);
  let queuedUpgrades = 0;
  let socketsEnded = 0;
  let upgradesRead = 0;
  let leavesRead = 0;
  /**
   * Sockets with reads waiting in the queue, and how many: their later reads wait too, in order. A
   * socket just upgraded is here with none: its first read (the Socket.IO CONNECT, which builds the
   * namespace's socket before the paced connect middleware runs) waits for a turn as well, so that
   * the CONNECTs of a storm's clients, written together, are not all handled in the poll phase that
   * reads them.
   */
  const held = new WeakMap<Socket, number>();
  /** Sockets whose close frame was read (counted once each). */
  const leaving = new WeakSet<Socket>();
  const ends = deferEnds(
    (job) => queue.pushUrgent(job),
    () => socketsEnded++,
  );
  const listeners = server.listeners('upgrade') as UpgradeListener[];
  server.removeAllListeners('upgrade');

  // One function for every socket (no closure per socket): it reads the socket from `this`. Every
  // 'data' of the socket passes here, so the common path forwards `arguments` as they are.
  function pacedEmit(this: Socket, event: string | symbol): boolean {
    if (event === 'data') {
      // A polite leave (close frame) costs as much as an abrupt one, but comes as data: held for
      // its turn like an end, with every later read of the socket behind it.
      // biome-ignore lint/complexity/noArguments: the chunk, read on the hot path of every read
      const chunk: unknown = arguments[1];
      const isHeld = held.has(this);
      const closing = endsWithClientClose(chunk);
      // biome-ignore lint/complexity/noArguments: forwarding without copying, on the hot path of every read
      if (!isHeld && !closing) return Reflect.apply(socketEmit, this, arguments);
      if (closing && !leaving.has(this)) {
        leaving.add(this);
        leavesRead++;
      }
      // biome-ignore lint/complexity/noArguments: the event's own arguments, kept for later
      return holdRead(this, Array.prototype.slice.call(arguments));
    }
    // biome-ignore lint/complexity/noArguments: forwarding without copying
    if (event !== 'end' && event !== 'close') return Reflect.apply(socketEmit, this, arguments);
    if (event === 'end') {
      // The end was read in a queued job already: this is that job's tick, in its turn.
      // biome-ignore lint/complexity/noArguments: forwarding without copying
      if (ends?.wasQueued(this)) return Reflect.apply(socketEmit, this, arguments);
      if (!ends) socketsEnded++;
    }
    // biome-ignore lint/complexity/noArguments: the event's own arguments, kept for later
    const args = Array.prototype.slice.call(arguments);
    queue.pushUrgent(() => Reflect.apply(socketEmit, this, args));
    return this.listenerCount(event) > 0;
  }

  function holdRead(socket: Socket, args: unknown[]): boolean {
    const pending = (held.get(socket) ?? 0) + 1;
    if (pending > MAX_HELD_READS) {
      socket.destroy();
      return false;
    }
    held.set(socket, pending);
    queue.pushUrgent(() => {
      const left = (held.get(socket) ?? 1) - 1;
      if (left === 0) held.delete(socket);
      else held.set(socket, left);
      if (!socket.destroyed) Reflect.apply(socketEmit, socket, args);
    });
    return true;
  }

  // The 101 answer (ws writes it) and engine.io's open packet (written a few promise reactions
  // later: engine.io's middlewares, then its handshake awaits the id) leave in one writev instead
  // of two write syscalls: the socket is corked for its upgrade, until engine.io says the
  // connection is open or refused (a refusal is written, then the socket destroyed: it must not
  // sit in the cork). Anything else (ws refusing a bad handshake ends the socket, which uncorks
  // it) is uncorked by the next loop iteration, after every promise reaction of this turn.
  const corked = new Set<Duplex>();
  let sweepScheduled = false;
  const uncork = (socket: Duplex | undefined): void => {
    if (socket && corked.delete(socket)) socket.uncork();
  };
  const sweep = (): void => {
    sweepScheduled = false;
    for (const socket of corked) socket.uncork();
    corked.clear();
  };
  function corkUntilOpen(socket: Duplex): void {
    if (!options.engine) return;
    socket.cork();
    corked.add(socket);
    if (!sweepScheduled) {
      sweepScheduled = true;
      setImmediate(sweep);
    }
  }
  options.engine?.on('connection', (connection) => uncork(connection.request?.socket));
  options.engine?.on('connection_error', (error) => uncork(error.req?.socket));

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    upgradesRead++;
    if (queuedUpgrades >= options.maxQueuedUpgrades) {
      options.onQueueFull();
      socket.end(QUEUE_FULL_RESPONSE);
      return;
    }
    // Node removed its own error listener when it handed the socket over: without one, a reset
    // while the upgrade waits would be an uncaught error.
    socket.on('error', ignoreError);
    queuedUpgrades++;
    queue.push(() => {
      queuedUpgrades--;
      socket.off('error', ignoreError);
      if (socket.destroyed) return;
      // Stopped while it waited (shutdown): nothing would serve it any more.
      if (!server.listening) {
        socket.destroy();
        return;
      }
      (socket as Socket & { emit: typeof pacedEmit }).emit = pacedEmit;
      held.set(socket as Socket, 0);
      ends?.install(socket);
      corkUntilOpen(socket);
      for (const listener of listeners) listener.call(server, req, socket, head);
    });
  });

  return {
    get queuedUpgrades() {
      return queuedUpgrades;
    },
    get queued() {
      return queue.size;
    },
    get socketsEnded() {
      return socketsEnded;
    },
    get socketReads() {
      return ends?.dataReads ?? 0;
    },
    get upgradesRead() {
      return upgradesRead;
    },
    get leavesRead() {
      return leavesRead;
    },
    stats: queue.stats,
    endsDeferred: ends !== undefined,
    defer: (job) => queue.pushUrgent(job),
  };
}

function ignoreError(): void {}

/**
 * The Socket.IO middleware that makes a namespace's connects take their turn. Socket.IO makes a
 * new socket for every CONNECT packet of a namespace the connection has not joined yet, so while
 * one connect waits here a client could queue thousands more on the same connection (each a
 * socket and a job): only the first waits, the others are refused with `refuseDuplicate()`.
 */
export function pacedConnects(pacing: LifecyclePacing, refuseDuplicate: () => Error): (socket: { conn: object }, next: (error?: Error) => void) => void {
  const waiting = new WeakSet<object>();
  return (socket, next) => {
    const connection = socket.conn;
    if (waiting.has(connection)) {
      next(refuseDuplicate());
      return;
    }
    waiting.add(connection);
    pacing.defer(() => {
      waiting.delete(connection);
      next();
    });
  };
}
