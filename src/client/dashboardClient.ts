/**
 * A typed dashboard client for the hub's `/dashboard` namespace: it connects, subscribes, applies
 * diffs to a local `LiveView`, checks `seq`, and resumes (or takes a fresh snapshot) by itself after
 * a reconnect, a gap or a reset. Usage:
 *
 *   const client = new DashboardClient({ url: 'http://127.0.0.1:9001', token: apiKey });
 *   const sub = await client.subscribe({ projectKey, filters: [...], sort: 'timestamp', limit: 50 });
 *   sub.on('change', () => render(sub.view.list(), sub.view.total));
 */
import { EventEmitter } from 'node:events';
import { io, type Socket } from 'socket.io-client';
import { DASHBOARD_NAMESPACE, DEFAULT_WS_PATH, DashboardEvent, type SessionsDiff, type SubscribeAck, type SubscribeRequest } from '../protocol';
import { parseSearchQuery } from '../sessions/query';
import { LiveView } from './liveView';

export interface DashboardClientOptions {
  /** The hub's base URL, e.g. http://127.0.0.1:9001 */
  url: string;
  /** An API key allowed for the projects, or a JWT with a projectKey claim. */
  token: string;
  path?: string;
  /** How long to wait for a subscribe ack. */
  ackTimeoutMs?: number;
  transports?: ('websocket' | 'polling')[];
}

export type DashboardQuery = Omit<SubscribeRequest, 'resume'>;

export class SubscribeError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'SubscribeError';
  }
}

/** One live subscription. Events: 'change' (view changed), 'resync' (view replaced by a snapshot), 'error'. */
export class LiveSubscription extends EventEmitter {
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
    const parsed = parseSearchQuery(query);
    if (!parsed.ok) throw new SubscribeError('INVALID_FILTER', parsed.message);
    this.view = new LiveView(parsed.value.sort, parsed.value.order);
  }

  unsubscribe(): Promise<boolean> {
    return this.client.unsubscribe(this);
  }
}

export class DashboardClient extends EventEmitter {
  readonly socket: Socket;
  private readonly subscriptions = new Map<string, LiveSubscription>();
  private readonly ackTimeoutMs: number;
  private connectedOnce = false;

  constructor(options: DashboardClientOptions) {
    super();
    this.ackTimeoutMs = options.ackTimeoutMs ?? 10_000;
    this.socket = io(`${options.url.replace(/\/$/, '')}${DASHBOARD_NAMESPACE}`, {
      path: options.path ?? DEFAULT_WS_PATH,
      transports: options.transports ?? ['websocket'],
      auth: { token: options.token },
      forceNew: true,
    });
    this.socket.on('connect', () => {
      if (this.connectedOnce) for (const sub of this.subscriptions.values()) void this.resume(sub);
      this.connectedOnce = true;
    });
    this.socket.on('connect_error', (err: Error) => this.emit('connect_error', err));
    this.socket.on(DashboardEvent.diff, (diff: SessionsDiff) => this.onDiff(diff));
    this.socket.on(DashboardEvent.resync, (msg: { subscriptionId: string }) => {
      const sub = this.subscriptions.get(msg.subscriptionId);
      if (sub) void this.resume(sub);
    });
  }

  /** Resolves once connected; rejects on an authentication refusal. */
  connected(): Promise<void> {
    if (this.socket.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onConnect = () => {
        this.socket.off('connect_error', onError);
        resolve();
      };
      const onError = (err: Error) => {
        this.socket.off('connect', onConnect);
        reject(err);
      };
      this.socket.once('connect', onConnect);
      this.socket.once('connect_error', onError);
    });
  }

  async subscribe(query: DashboardQuery): Promise<LiveSubscription> {
    const ack = await this.request(query);
    if (!ack.ok) throw new SubscribeError(ack.error.code, ack.error.message);
    const sub = new LiveSubscription(ack.subscriptionId, query, this);
    sub.view.reset(ack);
    this.subscriptions.set(sub.subscriptionId, sub);
    return sub;
  }

  async unsubscribe(sub: LiveSubscription): Promise<boolean> {
    this.subscriptions.delete(sub.subscriptionId);
    const ack = (await this.socket.timeout(this.ackTimeoutMs).emitWithAck(DashboardEvent.unsubscribe, { subscriptionId: sub.subscriptionId })) as { ok: boolean };
    return ack.ok;
  }

  close(): void {
    this.subscriptions.clear();
    this.socket.close();
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
      sub.emit('change', diff);
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
        sub.emit('error', new SubscribeError(ack.error.code, ack.error.message));
        return;
      }
      if (ack.subscriptionId !== sub.subscriptionId) {
        this.subscriptions.delete(sub.subscriptionId);
        sub.subscriptionId = ack.subscriptionId;
        this.subscriptions.set(sub.subscriptionId, sub);
      }
      if (!ack.resumed) {
        sub.view.reset(ack);
        sub.stats.resyncs++;
        sub.emit('resync');
        sub.emit('change');
      }
    } catch (err) {
      sub.emit('error', err);
    } finally {
      sub.resuming = false;
    }
  }
}
