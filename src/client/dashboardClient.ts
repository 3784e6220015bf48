/**
 * A typed dashboard client for the hub's `/dashboard` namespace: it connects, subscribes, applies
 * diffs to a local `LiveView`, checks `seq`, and resumes (or takes a fresh snapshot) by itself after
 * a reconnect, a gap or a reset. Browser-safe: socket.io-client is its only runtime dependency (no
 * Node built-ins, no validation library); it is published as `live-session-hub/client`. Usage:
 *
 *   const client = new DashboardClient({ url: 'http://127.0.0.1:9001', token: apiKey });
 *   const sub = await client.subscribe({ projectKey, filters: [...], sort: 'timestamp', limit: 50 });
 *   const render = () => draw(sub.view.list(), sub.view.total);
 *   render(); // the snapshot
 *   sub.on('change', render); // every diff and resync after it
 */
import { io, type Socket } from 'socket.io-client';
import { DASHBOARD_NAMESPACE, DEFAULT_WS_PATH, DashboardEvent, type SessionsDiff, type SubscribeAck, type SubscribeRequest } from '../protocol';
import { type SortOrder, sortFieldOf } from '../sessions/grammar';
import { Emitter } from './emitter';
import { LiveView } from './liveView';

export interface DashboardClientOptions {
  /** The hub's base URL, e.g. http://127.0.0.1:9001 (in a page served by the hub: location.origin). */
  url: string;
  /**
   * An API key allowed for the projects, or a JWT with a projectKey claim; or a function giving
   * one, called at every (re)connect. With a function, a JWT that expires is replaced: the hub
   * disconnects the socket at the token's `exp` (`TOKEN_EXPIRED`), the client connects again with
   * a fresh token and resumes its subscriptions. With a plain string an expired token is final.
   */
  token: string | TokenProvider;
  /** Socket.IO path; default `/ws-assist/socket`. */
  path?: string;
  /** How long to wait for a subscribe or unsubscribe ack. */
  ackTimeoutMs?: number;
  transports?: ('websocket' | 'polling')[];
  /** Reconnection delays (Socket.IO's `reconnectionDelay` / `reconnectionDelayMax`), ms. */
  reconnectionDelayMs?: number;
  reconnectionDelayMaxMs?: number;
}

export type DashboardQuery = Omit<SubscribeRequest, 'resume'>;

/** Gives the token to connect with (e.g. fetches a fresh JWT from the dashboard's backend). */
export type TokenProvider = () => string | Promise<string>;

/**
 * Where the connection is: `connecting` (first attempt), `live`, `reconnecting` (lost; Socket.IO
 * retries with backoff), `refused` (the hub refused the token: no retry), `closed` (by `close()`).
 */
export type ConnectionState = 'connecting' | 'live' | 'reconnecting' | 'refused' | 'closed';

export class SubscribeError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'SubscribeError';
  }
}

export type SubscriptionEvents = {
  /** The view changed: by `diff`, or (no argument) replaced by a fresh snapshot. */
  change: [diff?: SessionsDiff];
  /** The view was replaced by a fresh snapshot (after a reconnect the hub could not resume, or a reset). */
  resync: [];
  /** After a reconnect the hub resumed the subscription: the missed diffs follow as `change`. */
  resumed: [];
  /**
   * The subscription ended for good: another connection of the same credential took it over
   * (`SUBSCRIPTION_TAKEN_OVER`). No more diffs come; the view keeps its last state.
   */
  revoked: [error: SubscribeError];
  error: [error: Error];
};

export type ClientEvents = {
  state: [state: ConnectionState, error?: Error];
  connect_error: [error: Error];
};

/** One live subscription. `view` holds the current result; events: 'change', 'resync', 'resumed', 'revoked', 'error'. */
export class LiveSubscription extends Emitter<SubscriptionEvents> {
  readonly view: LiveView;
  /** Diffs applied, resyncs taken, and gaps detected: what a dashboard may want to show or log. */
  readonly stats = { diffs: 0, resyncs: 0, gaps: 0, resumes: 0 };
  resuming = false;

  constructor(
    public subscriptionId: string,
    readonly query: DashboardQuery,
    private readonly client: DashboardClient,
  ) {
    super();
    // The hub has accepted the query (validated it with the REST grammar): only its order is needed here.
    const sort = sortFieldOf(query.sort ?? 'timestamp') ?? 'timestamp';
    const order: SortOrder = (query.order ?? 'DESC').toUpperCase() === 'ASC' ? 'ASC' : 'DESC';
    this.view = new LiveView(sort, order);
  }

  unsubscribe(): Promise<boolean> {
    return this.client.unsubscribe(this);
  }

  /** @internal the client's way to raise events. */
  notify<K extends keyof SubscriptionEvents>(event: K, ...args: SubscriptionEvents[K]): void {
    this.emit(event, ...args);
  }
}

export class DashboardClient extends Emitter<ClientEvents> {
  readonly socket: Socket;
  private readonly subscriptions = new Map<string, LiveSubscription>();
  private readonly ackTimeoutMs: number;
  private connectedOnce = false;
  private currentState: ConnectionState = 'connecting';

  constructor(options: DashboardClientOptions) {
    super();
    this.ackTimeoutMs = options.ackTimeoutMs ?? 10_000;
    this.socket = io(`${options.url.replace(/\/$/, '')}${DASHBOARD_NAMESPACE}`, {
      path: options.path ?? DEFAULT_WS_PATH,
      transports: options.transports ?? ['websocket'],
      auth: typeof options.token === 'function' ? authFrom(options.token) : { token: options.token },
      forceNew: true,
      ...(options.reconnectionDelayMs !== undefined ? { reconnectionDelay: options.reconnectionDelayMs } : {}),
      ...(options.reconnectionDelayMaxMs !== undefined ? { reconnectionDelayMax: options.reconnectionDelayMaxMs } : {}),
    });
    this.socket.on('connect', () => {
      this.setState('live');
      if (this.connectedOnce) for (const sub of this.subscriptions.values()) void this.resume(sub);
      this.connectedOnce = true;
    });
    let tokenExpired = false;
    this.socket.on('error', (err: { code?: unknown } | undefined) => {
      if (err?.code === 'TOKEN_EXPIRED') tokenExpired = true;
    });
    this.socket.on('disconnect', () => {
      // The hub ends a socket whose JWT expired; Socket.IO does not reconnect after a server's
      // disconnect, so a client that can get a fresh token connects again by itself.
      if (tokenExpired && typeof options.token === 'function' && this.currentState !== 'closed') {
        tokenExpired = false;
        this.setState('reconnecting');
        this.socket.connect();
        return;
      }
      this.setState(this.socket.active ? 'reconnecting' : 'closed');
    });
    this.socket.on('connect_error', (err: Error) => {
      // A refusal by the hub's middleware is final (Socket.IO does not retry it); a transport error is retried.
      this.setState(this.socket.active ? (this.connectedOnce ? 'reconnecting' : 'connecting') : 'refused', err);
      this.emit('connect_error', err);
    });
    this.socket.on(DashboardEvent.diff, (diff: SessionsDiff) => this.onDiff(diff));
    this.socket.on(DashboardEvent.resync, (msg: { subscriptionId: string }) => {
      const sub = this.subscriptions.get(msg.subscriptionId);
      if (sub) void this.resume(sub);
    });
    this.socket.on(DashboardEvent.revoked, (msg: { subscriptionId: string; code: string; message: string }) => {
      const sub = this.subscriptions.get(msg.subscriptionId);
      if (!sub) return;
      // Dropped before telling, so a reconnect does not try to resume what is now another socket's.
      this.subscriptions.delete(msg.subscriptionId);
      sub.notify('revoked', new SubscribeError(msg.code, msg.message));
    });
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  /** Resolves once connected; rejects when the hub refuses the token (transport errors are retried). */
  connected(): Promise<void> {
    if (this.socket.connected) return Promise.resolve();
    if (this.currentState === 'refused' || this.currentState === 'closed') return Promise.reject(new Error(`the client is ${this.currentState}`));
    return new Promise((resolve, reject) => {
      const onConnect = () => {
        this.socket.off('connect_error', onError);
        resolve();
      };
      const onError = (err: Error) => {
        if (this.socket.active) return;
        this.socket.off('connect', onConnect);
        this.socket.off('connect_error', onError);
        reject(err);
      };
      this.socket.once('connect', onConnect);
      this.socket.on('connect_error', onError);
    });
  }

  /** Subscribes once connected; resolves with the subscription holding the snapshot, or rejects with a SubscribeError. */
  async subscribe(query: DashboardQuery): Promise<LiveSubscription> {
    await this.connected();
    const ack = await this.request(query);
    if (!ack.ok) throw new SubscribeError(ack.error.code, ack.error.message);
    const sub = new LiveSubscription(ack.subscriptionId, query, this);
    sub.view.reset(ack);
    this.subscriptions.set(sub.subscriptionId, sub);
    return sub;
  }

  async unsubscribe(sub: LiveSubscription): Promise<boolean> {
    this.subscriptions.delete(sub.subscriptionId);
    if (!this.socket.connected) return false;
    const ack = (await this.socket.timeout(this.ackTimeoutMs).emitWithAck(DashboardEvent.unsubscribe, { subscriptionId: sub.subscriptionId })) as { ok: boolean };
    return ack.ok;
  }

  close(): void {
    this.subscriptions.clear();
    this.socket.close();
    this.setState('closed');
  }

  private setState(state: ConnectionState, error?: Error): void {
    if (state === this.currentState && !error) return;
    this.currentState = state;
    this.emit('state', state, ...(error ? [error] : []));
  }

  private request(body: SubscribeRequest): Promise<SubscribeAck> {
    return this.socket.timeout(this.ackTimeoutMs).emitWithAck(DashboardEvent.subscribe, body) as Promise<SubscribeAck>;
  }

  private onDiff(diff: SessionsDiff): void {
    const sub = this.subscriptions.get(diff.subscriptionId);
    if (!sub) return;
    const result = sub.view.apply(diff);
    if (result === 'applied') {
      sub.stats.diffs++;
      sub.notify('change', diff);
    } else if (result === 'gap' && !sub.resuming) {
      sub.stats.gaps++;
      void this.resume(sub);
    }
  }

  /** Asks for the diffs missed since the view's seq; the hub answers with them or with a snapshot. */
  private async resume(sub: LiveSubscription): Promise<void> {
    if (sub.resuming || !this.socket.connected) return;
    sub.resuming = true;
    sub.stats.resumes++;
    try {
      const ack = await this.request({ ...sub.query, resume: { subscriptionId: sub.subscriptionId, seq: sub.view.seq } });
      if (!ack.ok) {
        sub.notify('error', new SubscribeError(ack.error.code, ack.error.message));
        return;
      }
      if (ack.subscriptionId !== sub.subscriptionId) {
        this.subscriptions.delete(sub.subscriptionId);
        sub.subscriptionId = ack.subscriptionId;
        this.subscriptions.set(sub.subscriptionId, sub);
      }
      if (ack.resumed) {
        sub.notify('resumed');
      } else {
        sub.view.reset(ack);
        sub.stats.resyncs++;
        sub.notify('resync');
        sub.notify('change');
      }
    } catch (err) {
      sub.notify('error', err instanceof Error ? err : new Error(String(err)));
    } finally {
      sub.resuming = false;
    }
  }
}

/** Socket.IO's auth callback from a token provider: asked at every connection attempt. */
function authFrom(provider: TokenProvider): (cb: (data: { token: string }) => void) => void {
  return (cb) => {
    Promise.resolve()
      .then(provider)
      .then(
        (token) => cb({ token }),
        // No token: the hub refuses the attempt, which the client reports as `refused`.
        () => cb({ token: '' }),
      );
  };
}
