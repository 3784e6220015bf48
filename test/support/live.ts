/**
 * Helpers for the live-protocol integration suites: a real hub on an ephemeral port, real
 * socket.io-client trackers and agents, and a recorder that keeps every event a socket receives
 * from the moment it is created (events sent right after `connect` arrive in the same tick as the
 * connect packet: a listener attached after `await connect` would miss them).
 */
import { randomBytes } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { io, type Socket } from 'socket.io-client';
import type { Session } from '../../src/sessions/model';
import type { Hub } from '../../src/server';
import { API_KEY, CHROME_UA, JWT_SECRET, startTestHub } from './hub';
import { assertMatchesOpenApi } from './openapi';
import { eventually, pause, scaled } from './wait';

export { API_KEY, CHROME_UA, JWT_SECRET, projectKey } from './hub';
export const WS_PATH = '/ws-assist/socket';
export const IPHONE_UA =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1';

/** Default wait for an expected event (every wait of a Peer is scaled by TEST_TIME_FACTOR). */
export const EVENT_TIMEOUT_MS = 3000;
/**
 * How long a "nothing happens" check waits for an event another node would relay through Redis:
 * no barrier on this node can order what another node has yet to send (see `Peer.quietFor`).
 */
export const CROSS_NODE_QUIET_MS = 150;

/** The event a barrier's marker is sent as (the hub never sends it otherwise). */
const BARRIER_EVENT = 'test:barrier';
let barriers = 0;

export const startLiveHub = startTestHub;

let seq = 0;
/** A session id unique in the process (numeric, like OpenReplay's). */
export function newSessionId(): string {
  seq += 1;
  return `${Date.now()}${String(seq).padStart(4, '0')}${randomBytes(2).readUInt16BE(0)}`;
}

export interface Received {
  event: string;
  args: unknown[];
}

const live = new Set<Peer>();

/**
 * A client socket that records every event it receives (`disconnect` and `connect_error` too,
 * under those names) and lets a test consume them in order, per event name.
 */
export class Peer {
  readonly received: Received[] = [];
  private readonly cursors = new Map<string, number>();
  private readonly waiters = new Set<() => void>();

  /** `hub`: the in-process hub the socket connects to, for `barrier()` (absent for a socket made by URL). */
  constructor(
    readonly socket: Socket,
    readonly hub?: Hub,
  ) {
    live.add(this);
    socket.onAny((event: string, ...args: unknown[]) => this.push(event, args));
    socket.on('disconnect', (reason) => this.push('disconnect', [reason]));
    socket.on('connect_error', (err) => this.push('connect_error', [err.message]));
    socket.on('connect', () => this.push('connect', []));
  }

  get id(): string {
    const id = this.socket.id;
    if (!id) throw new Error('socket is not connected');
    return id;
  }

  private push(event: string, args: unknown[]): void {
    this.received.push({ event, args });
    for (const w of [...this.waiters]) w();
  }

  /** Every received occurrence of `event`, consumed or not. */
  all(event: string): unknown[][] {
    return this.received.filter((r) => r.event === event).map((r) => r.args);
  }

  /** Occurrences of `event` not yet returned by `next`. */
  pending(event: string): unknown[][] {
    return this.all(event).slice(this.cursors.get(event) ?? 0);
  }

  /** Resolves with `check()`'s first non-undefined result, re-checked on every received event. */
  private until<T>(check: () => T | undefined, what: string, unscaledMs: number): Promise<T> {
    const timeoutMs = scaled(unscaledMs);
    return new Promise((resolve, reject) => {
      const first = check();
      if (first !== undefined) return resolve(first);
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        const seen = this.received.map((r) => r.event).join(', ') || 'nothing';
        reject(new Error(`no ${what} within ${timeoutMs} ms (received: ${seen})`));
      }, timeoutMs);
      const waiter = (): void => {
        const hit = check();
        if (hit === undefined) return;
        clearTimeout(timer);
        this.waiters.delete(waiter);
        resolve(hit);
      };
      this.waiters.add(waiter);
    });
  }

  /** The arguments of the next (not yet consumed) occurrence of `event`; waits for it if needed. */
  next(event: string, timeoutMs = EVENT_TIMEOUT_MS): Promise<unknown[]> {
    return this.until(
      () => {
        const pos = this.cursors.get(event) ?? 0;
        const hit = this.all(event)[pos];
        if (hit) this.cursors.set(event, pos + 1);
        return hit;
      },
      `"${event}"`,
      timeoutMs,
    );
  }

  /** The next unconsumed occurrence of any of `events`, consumed. */
  first(events: readonly string[], timeoutMs = EVENT_TIMEOUT_MS): Promise<Received> {
    return this.until(
      () => {
        for (const event of events) {
          const pos = this.cursors.get(event) ?? 0;
          const hit = this.all(event)[pos];
          if (hit) {
            this.cursors.set(event, pos + 1);
            return { event, args: hit };
          }
        }
        return undefined;
      },
      events.map((e) => `"${e}"`).join(' or '),
      timeoutMs,
    );
  }

  private outcome(timeoutMs: number): Promise<Received> {
    return this.until(() => this.received.find((r) => r.event === 'connect' || r.event === 'connect_error'), 'connect or connect_error', timeoutMs);
  }

  /** Resolves once connected; rejects with the refusal message otherwise. */
  async connected(timeoutMs = EVENT_TIMEOUT_MS): Promise<this> {
    const r = await this.outcome(timeoutMs);
    if (r.event === 'connect_error') throw new Error(`refused: ${String(r.args[0])}`);
    return this;
  }

  /** Resolves with the `connect_error` message; rejects if the socket connects instead. */
  async refused(timeoutMs = EVENT_TIMEOUT_MS): Promise<string> {
    const r = await this.outcome(timeoutMs);
    if (r.event === 'connect') throw new Error('connected, expected a refusal');
    return String(r.args[0]);
  }

  /**
   * Resolves once everything the hub had sent this socket when called has arrived. The hub sends
   * the socket a marker itself, and Socket.IO delivers one socket's packets in order (one
   * engine.io write buffer, one transport, decoded in order): whatever the hub emitted to it
   * before, directly or through a room, arrives before the marker. So a test that has seen the
   * hub handle a trigger (an event it caused elsewhere, an index change; the hub's handlers emit
   * synchronously) knows, past the barrier, every event that trigger sent here.
   */
  async barrier(): Promise<void> {
    if (!this.hub) throw new Error('a barrier needs the in-process hub the socket is on (made by URL: use quietFor)');
    const server = this.hub.io.of('/').sockets.get(this.id);
    if (!server) throw new Error(`the hub holds no socket ${this.id} (received: ${this.received.map((r) => r.event).join(', ')})`);
    barriers += 1;
    const marker = barriers;
    server.emit(BARRIER_EVENT, marker);
    await this.until(() => (this.received.some((r) => r.event === BARRIER_EVENT && r.args[0] === marker) ? true : undefined), `barrier marker ${marker}`, EVENT_TIMEOUT_MS);
  }

  /** Fails if an unconsumed `event` arrived before a barrier (see `barrier`). */
  async quiet(event: string): Promise<void> {
    await this.barrier();
    this.expectNone(event);
  }

  /**
   * Fails if an unconsumed `event` is there after a fixed window (scaled): for events another node
   * would relay through Redis, which no barrier on this node orders. Then a local barrier, so
   * whatever this node had queued is in too.
   */
  async quietFor(event: string, ms = CROSS_NODE_QUIET_MS): Promise<void> {
    await pause(ms);
    if (this.hub) await this.barrier();
    this.expectNone(event);
  }

  private expectNone(event: string): void {
    const extra = this.pending(event);
    if (extra.length > 0) throw new Error(`unexpected "${event}": ${JSON.stringify(extra).slice(0, 500)}`);
  }

  emit(event: string, ...args: unknown[]): void {
    this.socket.emit(event, ...args);
  }

  /** Closes the socket and waits until the client has seen the disconnect. */
  async close(): Promise<void> {
    live.delete(this);
    if (!this.socket.connected) {
      this.socket.close();
      return;
    }
    const gone = this.next('disconnect');
    this.socket.close();
    await gone;
  }
}

/** Closes every Peer still open (afterEach). */
export async function closeAllPeers(): Promise<void> {
  const peers = [...live];
  live.clear();
  for (const p of peers) {
    p.socket.removeAllListeners();
    p.socket.offAny();
    p.socket.close();
  }
}

export interface TrackerOptions {
  projectKey: string;
  sessionId: string;
  /** The tab part of the peerId; `null` sends the two-part peerId. */
  tabId?: string | null;
  /** Merged over a realistic tracker sessionInfo (see `minimalInfo`). */
  info?: Record<string, unknown>;
  /**
   * The sessionInfo is only `sessionID` and `timestamp` under `info`, not `trackerInfo`'s
   * realistic fields: for suites whose searches and views must see exactly what they set.
   */
  minimalInfo?: boolean;
  /** Sent as is in the query instead of JSON.stringify(info) (for malformed values). */
  rawSessionInfo?: string;
  /** Replaces the query entirely (peerId/identity tests). */
  query?: Record<string, string>;
  auth?: Record<string, unknown>;
  userAgent?: string;
  headers?: Record<string, string>;
  /** Socket.IO client transports; trackers use WebSocket only. */
  transports?: ('polling' | 'websocket')[];
  /** The Socket.IO path (default WS_PATH; `/socket` is OpenReplay's alias). */
  path?: string;
  /** socket.io-client's own reconnection (off by default: a drop is then visible to the test). */
  reconnection?: boolean;
}

/** The sessionInfo a v11 tracker sends (see protocol.md). */
export function trackerInfo(o: { projectKey: string; sessionId: string }, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    pageTitle: 'Home',
    active: true,
    assistOnly: false,
    sessionID: o.sessionId,
    projectID: 7,
    userID: 'user@example.com',
    userUUID: 'b1c2d3e4-uuid',
    metadata: { plan: 'free', company: 'acme' },
    timestamp: Date.now(),
    trackerVersion: '11.0.5',
    isSnippet: false,
    revID: 'rev-1',
    ...extra,
  };
}

function sessionInfoOf(o: TrackerOptions): string {
  if (o.rawSessionInfo !== undefined) return o.rawSessionInfo;
  return JSON.stringify(o.minimalInfo ? { sessionID: o.sessionId, timestamp: Date.now(), ...o.info } : trackerInfo(o, o.info));
}

/** Creates a tracker socket to a hub (or a node's URL), not awaited: use `.connected()` or `.refused()`. */
export function trackerPeer(target: Hub | string, o: TrackerOptions): Peer {
  const tabId = o.tabId === undefined ? 'tab1' : o.tabId;
  const peerId = tabId === null ? `${o.projectKey}-${o.sessionId}` : `${o.projectKey}-${o.sessionId}-${tabId}`;
  const query: Record<string, string> = o.query ?? {
    peerId,
    identity: 'session',
    tabId: tabId ?? '',
    ...(o.auth?.sessionInfo !== undefined ? {} : { sessionInfo: sessionInfoOf(o) }),
  };
  const socket = io(typeof target === 'string' ? target : target.url, {
    path: o.path ?? WS_PATH,
    transports: o.transports ?? ['websocket'],
    query,
    auth: o.auth ?? {},
    extraHeaders: { 'user-agent': o.userAgent ?? CHROME_UA, ...o.headers },
    reconnection: o.reconnection ?? false,
    reconnectionDelay: 100,
    reconnectionDelayMax: 200,
    forceNew: true,
    timeout: scaled(EVENT_TIMEOUT_MS),
  });
  return new Peer(socket, typeof target === 'string' ? undefined : target);
}

/** The one way the suites connect a tracker tab: resolves once the hub accepted it, rejects with its refusal. */
export function connectTracker(target: Hub | string, o: TrackerOptions): Promise<Peer> {
  return trackerPeer(target, o).connected();
}

export function agentToken(claims: Record<string, unknown>, options: jwt.SignOptions = {}, secret = JWT_SECRET): string {
  // A token carries `exp` (from the claims when given there, else five minutes).
  const defaults: jwt.SignOptions = claims.exp === undefined ? { algorithm: 'HS256', expiresIn: 300 } : { algorithm: 'HS256' };
  return jwt.sign(claims, secret, { ...defaults, ...options });
}

export interface AgentOptions {
  projectKey: string;
  sessionId: string;
  info?: Record<string, unknown>;
  /** The `config` query value as sent (a JSON string); defaults to one with an ICE server. */
  config?: string;
  /** `auth.token`; defaults to a valid JWT for the session. `null` sends no token. */
  token?: string | null;
  peerId?: string;
  /** Socket.IO client transports (default WebSocket only). */
  transports?: ('polling' | 'websocket')[];
}

export function agentInfo(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { id: `${name}-id`, name, email: `${name}@support.test`, ...extra };
}

/** Creates an agent socket to a hub (or a node's URL), not awaited: use `.connected()` or `.refused()`. */
export function agentPeer(target: Hub | string, o: AgentOptions): Peer {
  const token = o.token === undefined ? agentToken({ projectKey: o.projectKey, sessionId: o.sessionId }) : o.token;
  const socket = io(typeof target === 'string' ? target : target.url, {
    path: WS_PATH,
    transports: o.transports ?? ['websocket'],
    query: {
      peerId: o.peerId ?? `${o.projectKey}-${o.sessionId}`,
      identity: 'agent',
      agentInfo: JSON.stringify(o.info ?? agentInfo('alice')),
      config: o.config ?? JSON.stringify({ iceServers: [] }),
      projectId: '1',
    },
    auth: token === null ? {} : { token },
    extraHeaders: { 'user-agent': CHROME_UA },
    reconnection: false,
    forceNew: true,
    timeout: scaled(EVENT_TIMEOUT_MS),
  });
  return new Peer(socket, typeof target === 'string' ? undefined : target);
}

export function connectAgent(hub: Hub, o: AgentOptions): Promise<Peer> {
  return agentPeer(hub, o).connected();
}

export function sessionOf(hub: Hub, project: string, sessionId: string): Session | undefined {
  return hub.ctx.index.session(project, sessionId);
}

/** Waits until the index holds the session (and `check` holds), and returns it. */
export async function waitSession(hub: Hub, project: string, sessionId: string, check: (s: Session) => boolean = () => true): Promise<Session> {
  await eventually(
    () => {
      const s = sessionOf(hub, project, sessionId);
      return s !== undefined && check(s);
    },
    () => `for session ${sessionId}: ${JSON.stringify(sessionOf(hub, project, sessionId))}`,
  );
  return sessionOf(hub, project, sessionId) as Session;
}

/** Waits until the index no longer holds the session. */
export async function waitNoSession(hub: Hub, project: string, sessionId: string): Promise<void> {
  await eventually(
    () => sessionOf(hub, project, sessionId) === undefined,
    () => `for session ${sessionId} to end: ${JSON.stringify(sessionOf(hub, project, sessionId))}`,
  );
}

export async function restSession(hub: Hub, project: string, sessionId: string): Promise<{ status: number; body: unknown }> {
  const path = `/api/v1/${project}/assist/sessions/${sessionId}`;
  const res = await fetch(`${hub.url}${path}`, { headers: { authorization: API_KEY } });
  const text = await res.text();
  const body: unknown = JSON.parse(text);
  assertMatchesOpenApi({ method: 'GET', url: path, status: res.status, contentType: res.headers.get('content-type'), json: body, text });
  return { status: res.status, body };
}
