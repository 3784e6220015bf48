/**
 * Dashboards: sockets on the `/dashboard` namespace, each holding one live subscription to a
 * project's session list, and the diff latency they observe.
 *
 * Diff latency = (dashboard receipt time) - (metadata.lastChange the tracker wrote, Date.now()
 * in the tracker worker). Both clocks are the same machine's wall clock, in different processes.
 * A (session, lastChange) pair is counted once per subscription, and only for changes made
 * after `measure()` was called, so sessions merely entering a window with an old change do
 * not count as slow diffs.
 *
 * The namespace may not exist in the hub yet: every failure is counted and the phase goes on.
 */
import type { Socket } from 'socket.io-client';
import { isRecord } from './http';
import { projectKeyOf } from './population';
import { openSocket, type HubConnection } from './sockets';
import { ErrorCounts, LatencyHistogram, describeError, type HistogramJson } from './stats';

export interface DashboardConnectArgs {
  count: number;
  projectCount: number;
  connectTimeoutMs: number;
  ackTimeoutMs: number;
}

export interface DashboardConnectResult {
  connected: number;
  subscribed: number;
  failed: number;
  /** Time from `subscribe` to its ack. */
  subscribeLatency: HistogramJson;
  /** Sessions in all initial snapshots together. */
  snapshotSessions: number;
  /** Subscriptions held, by variant name. */
  variants: Record<string, number>;
}

export interface DashboardMeasureArgs {
  /** Only changes stamped at or after this Date.now() value count. */
  sinceEpochMs: number;
}

export interface DashboardCollectResult {
  diffEvents: number;
  addedSessions: number;
  updatedSessions: number;
  removedSessions: number;
  /** Diffs whose seq was not the previous seq + 1. */
  seqGaps: number;
  diffLatency: HistogramJson;
}

interface SearchFilter {
  type: string;
  operator: 'is' | 'contains';
  value: string[];
  source?: string;
}

interface DashboardVariant {
  name: string;
  filters: SearchFilter[];
  sort?: string;
  order?: 'ASC' | 'DESC';
  limit?: number;
  /** Whether a pushed session may appear in this subscription at all (a filter check). */
  admits: (session: Record<string, unknown>) => boolean;
}

const admitsAll = (): boolean => true;
const planIn =
  (...plans: string[]) =>
  (session: Record<string, unknown>): boolean =>
    isRecord(session.metadata) && typeof session.metadata.plan === 'string' && plans.includes(session.metadata.plan.toLowerCase());

/** The subscription mix, assigned round-robin: what agent dashboards typically look at. */
export const DASHBOARD_VARIANTS: readonly DashboardVariant[] = [
  { name: 'all, newest first, limit 50', filters: [], sort: 'timestamp', order: 'DESC', limit: 50, admits: admitsAll },
  {
    name: 'plan is trial',
    filters: [{ type: 'METADATA', source: 'plan', operator: 'is', value: ['trial'] }],
    admits: planIn('trial'),
  },
  {
    name: 'browser contains chrome, limit 100',
    filters: [{ type: 'USERBROWSER', operator: 'contains', value: ['chrome'] }],
    limit: 100,
    admits: (session) => typeof session.userBrowser === 'string' && session.userBrowser.toLowerCase().includes('chrome'),
  },
  { name: 'all, userID ASC, limit 50', filters: [], sort: 'userID', order: 'ASC', limit: 50, admits: admitsAll },
  {
    name: 'plan is pro/enterprise, userID ASC, limit 20',
    filters: [{ type: 'METADATA', source: 'plan', operator: 'is', value: ['pro', 'enterprise'] }],
    sort: 'userID',
    order: 'ASC',
    limit: 20,
    admits: planIn('pro', 'enterprise'),
  },
];

interface Subscription {
  variant: DashboardVariant;
  seq: number;
  /** sessionID -> newest lastChange already measured for it. */
  measuredChange: Map<string, number>;
}

export class DashboardFleet {
  private sockets: Socket[] = [];
  private readonly subscriptions = new Map<string, Subscription>();
  private closing = false;
  private sinceEpochMs = Number.POSITIVE_INFINITY;
  private counters = emptyCounters();
  private diffLatency = new LatencyHistogram();

  constructor(
    private readonly hub: HubConnection,
    private readonly errors: ErrorCounts,
  ) {}

  async connect(args: DashboardConnectArgs): Promise<DashboardConnectResult> {
    this.closing = false;
    const subscribeLatency = new LatencyHistogram();
    const variants: Record<string, number> = {};
    let connected = 0;
    let snapshotSessions = 0;
    // At most a few hundred sockets: open them all at once, every wait is bounded by the timeouts.
    await Promise.all(
      Array.from({ length: args.count }, async (_, index) => {
        const variant = DASHBOARD_VARIANTS[index % DASHBOARD_VARIANTS.length] as DashboardVariant;
        const projectKey = projectKeyOf(index % args.projectCount);
        let socket: Socket;
        try {
          socket = await openSocket(this.hub, {
            namespace: '/dashboard',
            auth: { token: this.hub.apiKey },
            timeoutMs: args.connectTimeoutMs,
          });
        } catch (error) {
          this.errors.add(`dashboard.connect: ${describeError(error)}`);
          return;
        }
        connected += 1;
        this.sockets.push(socket);
        socket.on('sessions:diff', (diff: unknown) => this.onDiff(diff));
        socket.on('disconnect', (reason: string) => {
          if (!this.closing) this.errors.add(`dashboard.disconnect: ${reason}`);
        });
        const askedAt = performance.now();
        try {
          const ack: unknown = await socket.timeout(args.ackTimeoutMs).emitWithAck('subscribe', {
            projectKey,
            filters: variant.filters,
            ...(variant.sort !== undefined ? { sort: variant.sort } : {}),
            ...(variant.order !== undefined ? { order: variant.order } : {}),
            ...(variant.limit !== undefined ? { limit: variant.limit } : {}),
          });
          const failure = this.acceptAck(ack, variant);
          if (failure !== undefined) {
            this.errors.add(`dashboard.subscribe: ${failure}`);
            return;
          }
          subscribeLatency.record(performance.now() - askedAt);
          variants[variant.name] = (variants[variant.name] ?? 0) + 1;
          if (isRecord(ack) && Array.isArray(ack.sessions)) snapshotSessions += ack.sessions.length;
        } catch (error) {
          // emitWithAck rejects with "operation has timed out" when no ack comes.
          this.errors.add(`dashboard.subscribe: ${describeError(error)}`);
        }
      }),
    );
    const subscribed = subscribeLatency.size;
    return {
      connected,
      subscribed,
      failed: args.count - subscribed,
      subscribeLatency: subscribeLatency.toJson(),
      snapshotSessions,
      variants,
    };
  }

  /** Starts a measurement window: resets the counters and the latency histogram. */
  measure(args: DashboardMeasureArgs): { subscriptions: number } {
    this.sinceEpochMs = args.sinceEpochMs;
    this.counters = emptyCounters();
    this.diffLatency = new LatencyHistogram();
    return { subscriptions: this.subscriptions.size };
  }

  collect(): DashboardCollectResult {
    return { ...this.counters, diffLatency: this.diffLatency.toJson() };
  }

  close(): { closed: number } {
    this.closing = true;
    const closed = this.sockets.length;
    for (const socket of this.sockets) socket.disconnect();
    this.sockets = [];
    this.subscriptions.clear();
    this.sinceEpochMs = Number.POSITIVE_INFINITY;
    return { closed };
  }

  /** Registers the subscription; returns why the ack is a failure, if it is one. */
  private acceptAck(ack: unknown, variant: DashboardVariant): string | undefined {
    if (!isRecord(ack)) return 'ack is not an object';
    if (ack.ok !== true) {
      const code = isRecord(ack.error) && typeof ack.error.code === 'string' ? ack.error.code : 'no error code';
      return `refused (${code})`;
    }
    if (typeof ack.subscriptionId !== 'string' || typeof ack.seq !== 'number' || !Array.isArray(ack.sessions)) {
      return 'ack lacks subscriptionId/seq/sessions';
    }
    this.subscriptions.set(ack.subscriptionId, { variant, seq: ack.seq, measuredChange: new Map() });
    for (const session of ack.sessions) {
      if (!isRecord(session) || !variant.admits(session)) {
        this.errors.add(`dashboard.snapshot: session does not match "${variant.name}"`);
      }
    }
    return undefined;
  }

  private onDiff(diff: unknown): void {
    const receivedAt = Date.now();
    if (!isRecord(diff) || typeof diff.subscriptionId !== 'string') {
      this.errors.add('dashboard.diff: malformed (no subscriptionId)');
      return;
    }
    const subscription = this.subscriptions.get(diff.subscriptionId);
    if (subscription === undefined) {
      // A diff racing its ack, or one for a subscription the hub should not have.
      if (!this.closing) this.errors.add('dashboard.diff: unknown subscriptionId');
      return;
    }
    this.counters.diffEvents += 1;
    if (typeof diff.seq === 'number') {
      if (diff.seq !== subscription.seq + 1) {
        this.counters.seqGaps += 1;
        this.errors.add('dashboard.diff: seq is not previous + 1');
      }
      subscription.seq = diff.seq;
    } else {
      this.errors.add('dashboard.diff: no numeric seq');
    }
    if (diff.resync === true) this.errors.add('dashboard.diff: resync pushed');
    const added = Array.isArray(diff.added) ? diff.added : [];
    const updated = Array.isArray(diff.updated) ? diff.updated : [];
    this.counters.addedSessions += added.length;
    this.counters.updatedSessions += updated.length;
    this.counters.removedSessions += Array.isArray(diff.removed) ? diff.removed.length : 0;
    for (const session of [...added, ...updated]) this.measureSession(session, subscription, receivedAt);
  }

  private measureSession(session: unknown, subscription: Subscription, receivedAt: number): void {
    if (!isRecord(session) || typeof session.sessionID !== 'string') {
      this.errors.add('dashboard.diff: session without sessionID');
      return;
    }
    if (!subscription.variant.admits(session)) {
      this.errors.add(`dashboard.diff: session does not match "${subscription.variant.name}"`);
    }
    const lastChange = isRecord(session.metadata) ? Number(session.metadata.lastChange) : Number.NaN;
    if (!Number.isFinite(lastChange) || lastChange < this.sinceEpochMs) return;
    const measured = subscription.measuredChange.get(session.sessionID) ?? 0;
    if (lastChange <= measured) return;
    subscription.measuredChange.set(session.sessionID, lastChange);
    this.diffLatency.record(receivedAt - lastChange);
  }
}

function emptyCounters(): Omit<DashboardCollectResult, 'diffLatency'> {
  return { diffEvents: 0, addedSessions: 0, updatedSessions: 0, removedSessions: 0, seqGaps: 0 };
}
