/**
 * Which nodes are alive, and whether Redis is: the Redis store's timers.
 * - Heartbeat: every `heartbeatMs` this node refreshes its alive key (TTL `nodeTtlMs`) and sweeps:
 *   a node without a heartbeat is removed by one atomic script that appends a down entry, so every
 *   node drops its sessions at the same point of the stream. The sweep also reads every heartbeat's
 *   remaining TTL: when each node last beat, which decides whether its tabs may be taken over.
 * - Health ping: Redis can stop answering without closing a connection (a frozen process, a stalled
 *   host), and command timeouts notice that only after seconds. A PING unanswered for `stallMs`
 *   is a stall (the view is partial at once); the first answer after it ends the stall.
 */
import { type StreamBound, boundArgs, downScript, heartbeatScript, streamKeys } from './redisSchema';
import { hasJoined, isClosing } from './storePhase';
import { type RecoveryReason, type StorePart, errorMessage } from './storeSupport';

/**
 * Other nodes this node has applied entries of (their sessions may be in the index), and those a
 * resync found nothing of in Redis, with since when. After a Redis restart every node's state is
 * gone until it re-states (within moments of Redis coming back): their sessions are kept for one
 * TTL rather than removed and re-added on every dashboard; the sweep removes them if they do not
 * come back.
 */
export class KnownNodes {
  private known = new Set<string>();
  private readonly absentSince = new Map<string, number>();

  /** An entry of `nodeId` was applied. */
  seen(nodeId: string): void {
    this.known.add(nodeId);
    this.absentSince.delete(nodeId);
  }

  /** `nodeId` left or was removed: nothing of it is held any more. */
  gone(nodeId: string): void {
    this.known.delete(nodeId);
    this.absentSince.delete(nodeId);
  }

  has(nodeId: string): boolean {
    return this.known.has(nodeId);
  }

  ids(): IterableIterator<string> {
    return this.known.values();
  }

  /** Since when a resync found nothing of `nodeId` (undefined: it was there, or is not known). */
  absentSinceOf(nodeId: string): number | undefined {
    return this.absentSince.get(nodeId);
  }

  /**
   * A resync loaded the shares of `present`: known nodes missing from it start their grace
   * period. Returns whether a node's loaded share replaces what the index holds of it (not for
   * nodes in their grace period: what is held of them stays until they re-state or are removed).
   */
  loaded(present: ReadonlySet<string>, now: number): (nodeId: string) => boolean {
    for (const id of present) this.absentSince.delete(id);
    for (const id of this.known) if (!present.has(id) && !this.absentSince.has(id)) this.absentSince.set(id, now);
    this.known = new Set([...present, ...this.absentSince.keys()]);
    return (id) => !this.absentSince.has(id);
  }
}

export interface LivenessOptions extends StorePart {
  heartbeatMs: number;
  nodeTtlMs: number;
  stallMs: number;
  streamBound: StreamBound;
  /** Identifies this process in its alive key: a second process with the same node id shows up. */
  token: string;
  connected: () => boolean;
  /** A reload of the view is owed (then what Redis says of nodes may be older than what it brings). */
  resyncOwed: () => boolean;
  requestRecovery: (reason: RecoveryReason) => void;
  /** The health ping went unanswered for `stallMs` / answered again after a stall. */
  onStall: (event: 'stallSeen' | 'stallOver') => void;
  /** After each heartbeat (the store refreshes its partial gauge). */
  afterTick: () => void;
}

export class Liveness {
  private heartbeat: NodeJS.Timeout | undefined;
  private pinger: NodeJS.Timeout | undefined;
  /** One heartbeat at a time: a slow Redis must not pile them up. */
  private ticking = false;
  /** When the unanswered health ping was sent. */
  private pingSentAt: number | undefined;
  private stalledAt: number | undefined;
  /** Last heartbeat of each other node as seen by the last sweep (estimated from its key's remaining TTL). */
  private readonly lastBeat = new Map<string, number>();
  private lastSweepAt = 0;
  private duplicateWarned = false;

  constructor(private readonly options: LivenessOptions) {}

  /** Since when Redis has not answered the health ping (undefined: it answers). */
  get stalledSince(): number | undefined {
    return this.stalledAt;
  }

  start(): void {
    this.heartbeat = setInterval(() => void this.tick(), this.options.heartbeatMs);
    this.heartbeat.unref();
    this.pinger = setInterval(() => this.checkHealth(), Math.max(10, Math.floor(this.options.stallMs / 2)));
    this.pinger.unref();
  }

  stop(): void {
    clearInterval(this.heartbeat);
    clearInterval(this.pinger);
  }

  /**
   * Whether a new socket may take `tab` over from the socket holding it: only from another node
   * whose heartbeat is already late (it was killed: its tab reconnecting here need not wait for
   * the eviction), and only while this node's own view of heartbeats is fresh.
   */
  mayReplace(tab: { nodeId: string }): boolean {
    const { phase, connected, heartbeatMs } = this.options;
    const joined = phase() === 'live' || phase() === 'resyncing';
    if (tab.nodeId === this.options.nodeId || !joined || this.stalledAt !== undefined || !connected()) return false;
    const now = Date.now();
    if (now - this.lastSweepAt > 2 * heartbeatMs) return false;
    const beat = this.lastBeat.get(tab.nodeId);
    return beat !== undefined && now - beat > this.staleAfterMs();
  }

  /** A node silent this long is treated as dead for tab takeovers (three heartbeats, under the TTL). */
  private staleAfterMs(): number {
    return Math.min(3 * this.options.heartbeatMs, this.options.nodeTtlMs - this.options.heartbeatMs);
  }

  private checkHealth(): void {
    const { cmd, stallMs, metrics, logger } = this.options;
    if (isClosing(this.options.phase())) return;
    const now = Date.now();
    if (this.pingSentAt !== undefined) {
      if (this.stalledAt === undefined && now - this.pingSentAt >= stallMs) {
        // Timers run before the poll phase: after this process was busy itself (a long turn, a
        // full GC), Redis's answer may be waiting unread in the socket. Only a ping still
        // unanswered once the poll phase has read what arrived is a stall of Redis. (Blaming Redis
        // for the hub's own pauses started a resync, a longer pause, and so on: docs/performance.md.)
        const sent = this.pingSentAt;
        setImmediate(() => {
          if (this.pingSentAt !== sent || this.stalledAt !== undefined || isClosing(this.options.phase())) return;
          this.stalledAt = sent;
          metrics.stalls.inc();
          logger.warn({ stallMs }, 'Redis is not answering: the cluster view is partial until it does');
          this.options.onStall('stallSeen');
        });
      }
      return;
    }
    if (cmd.status !== 'ready') return;
    const sent = now;
    this.pingSentAt = sent;
    cmd.ping().then(
      () => {
        if (this.pingSentAt === sent) this.pingSentAt = undefined;
        const since = this.stalledAt;
        if (since === undefined) return;
        this.stalledAt = undefined;
        const stalledMs = Date.now() - since;
        metrics.stallSeconds.observe(stalledMs / 1000);
        logger.info({ stalledMs }, 'Redis answers again: resynchronising');
        this.options.onStall('stallOver');
      },
      () => {
        if (this.pingSentAt === sent) this.pingSentAt = undefined;
      },
    );
  }

  private async tick(): Promise<void> {
    const { cmd, keys, nodeId, metrics, logger } = this.options;
    if (this.ticking || isClosing(this.options.phase()) || cmd.status !== 'ready') return;
    this.ticking = true;
    try {
      const previous = await heartbeatScript.run(cmd, [keys.alive(nodeId), keys.nodes], [this.options.token, this.options.nodeTtlMs, nodeId]);
      if (previous === null && hasJoined(this.options.phase()) && !this.options.resyncOwed()) {
        // Our heartbeat had expired (a long pause): others may have removed our sessions already.
        this.options.requestRecovery('expired');
      } else if (typeof previous === 'string' && previous !== this.options.token && !this.duplicateWarned) {
        this.duplicateWarned = true;
        logger.error({ nodeId }, 'another running process uses this NODE_ID: give every node its own');
      }
      await this.sweep();
    } catch (err) {
      metrics.redisErrors.inc({ client: 'store' });
      logger.debug({ err: errorMessage(err) }, 'heartbeat failed');
    } finally {
      this.ticking = false;
    }
    this.options.afterTick();
  }

  /** Removes the nodes whose heartbeat expired, from Redis and (through the stream) from every view. */
  private async sweep(): Promise<void> {
    const { cmd, keys, nodeId, nodes, metrics, logger } = this.options;
    const members = await cmd.smembers(keys.nodes);
    const candidates = [...new Set([...members, ...nodes.ids()])].filter((id) => id !== nodeId);
    if (candidates.length === 0) {
      metrics.nodes.set(1);
      return;
    }
    const pipe = cmd.pipeline();
    for (const id of candidates) pipe.pttl(keys.alive(id));
    const replies = (await pipe.exec()) ?? [];
    const now = Date.now();
    this.lastSweepAt = now;
    let aliveNodes = 1;
    for (const [i, id] of candidates.entries()) {
      const [err, ttl] = replies[i] ?? [];
      if (err) throw err;
      // -2: no key (expired); -1: no TTL (not written by a heartbeat, still alive); else ms left.
      if (typeof ttl === 'number' && ttl !== -2) {
        aliveNodes++;
        // Its last heartbeat set the TTL to the full CLUSTER_NODE_TTL_MS: what is gone of it is how long ago that was.
        this.lastBeat.set(id, ttl >= 0 ? now - (this.options.nodeTtlMs - ttl) : now);
        continue;
      }
      this.lastBeat.delete(id);
      const result = await downScript.run(cmd, [keys.node(id), keys.alive(id), keys.nodes, ...streamKeys(keys)], [...boundArgs(this.options.streamBound), id, nodeId, '1']);
      if (result === 1) {
        metrics.evictions.inc();
        logger.warn({ node: id }, 'node stopped heartbeating: its sessions are removed from the cluster');
      } else if (result === 2 && nodes.has(id) && !this.options.resyncOwed()) {
        // Redis has nothing of it (removed while we were away, or lost in a Redis restart and not
        // re-stated within a TTL): drop what we hold.
        const since = nodes.absentSinceOf(id);
        if (since !== undefined && Date.now() - since < this.options.nodeTtlMs) continue;
        this.options.view.dropNode(id);
        nodes.gone(id);
      }
    }
    metrics.nodes.set(aliveNodes);
  }
}
