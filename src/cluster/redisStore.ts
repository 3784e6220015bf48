/**
 * The cluster store: every node's index replicated through Redis (see docs/cluster.md).
 *
 * - Writes: `publish` applies an op to the local index at once (local reads never wait on Redis),
 *   then, batched per event-loop turn with one write in flight at a time, one Lua script updates
 *   this node's share of the view (hash `node:<id>`) and appends the ops to the `ops` stream,
 *   atomically. While Redis is unreachable ops are dropped, not queued: the node re-states its
 *   whole share when Redis is back.
 * - Reads: one loop on a dedicated connection (XREAD BLOCK) applies the other nodes' entries in
 *   stream order. Every entry carries a sequence number; a gap (trimmed stream, Redis restarted)
 *   or a lost connection triggers a recovery: re-state this node's share, load every node's share,
 *   reconcile the index with it, and go on reading from the stream position taken before loading.
 * - Liveness: a heartbeat key with a TTL per node; every node sweeps for expired ones and removes
 *   them with one atomic script that appends a `down` entry, so all nodes drop a dead node's
 *   sessions at the same point of the stream. A tab of a node already late is taken over (mayReplace).
 * - Same-tab races: every live claim on a tab is kept, the index holds the one pickClaim chooses,
 *   and local sockets whose claims lost are refused (their leave removes their claims everywhere).
 * - Stalls: a health PING with its own short deadline (stallMs) marks the view partial when Redis
 *   stops answering without closing connections; the first answer after it resynchronises.
 */
import { randomBytes } from 'node:crypto';
import type Redis from 'ioredis';
import type { RedisOptions } from 'ioredis';
import type { Logger } from '../ops/logger';
import type { SessionData } from '../sessions/model';
import type { IndexOp } from '../sessions/ops';
import { type SessionIndex, findTab } from '../sessions/sessionIndex';
import { redisClient } from './connection';
import type { ClusterMetrics } from './metrics';
import {
  type NodeShares,
  type RoomRef,
  decodeShares,
  decodeStatePayload,
  encodeStatePayload,
  hasTabOf,
  isIndexOp,
  reconcileOps,
  roomField,
  shareOf,
  sharesOf,
} from './nodeState';
import { type HeldClaim, TabClaims } from './tabClaims';
import { type ClusterKeys, EntryKind, downScript, heartbeatScript, publishScript, restateScript } from './redisSchema';
import type { ClusterStore, StoreStatus } from './store';

export interface RedisStoreOptions {
  nodeId: string;
  index: SessionIndex;
  /** `redis://` URL; with Sentinel there is none and `redisOptions` says where. */
  redisUrl?: string;
  /** Connection options from the configuration (cluster/connection.ts): sentinels, credentials, TLS. */
  redisOptions?: RedisOptions;
  keys: ClusterKeys;
  heartbeatMs: number;
  nodeTtlMs: number;
  /** Approximate length the ops stream is trimmed to. */
  streamMaxLen: number;
  /** How long `start()` waits for the first view; 0 = not at all (the node reports not ready until then). */
  joinTimeoutMs: number;
  logger: Logger;
  metrics: ClusterMetrics;
  /** A local tab lost a same-tabId race to another node's claim: refuse its socket (its leave publishes tab:down). */
  onTabLost?: (socketId: string) => void;
  /** A health PING unanswered this long marks Redis stalled (the view partial); pings go every half of it. */
  stallMs?: number;
  /** Ops gathered while a write is in flight; past it they are dropped and the node re-states (bounded memory). */
  maxPendingOps?: number;
}

/** Why the view is reloaded: the `reason` label of hub_cluster_resyncs_total. */
type RecoveryReason = 'join' | 'reconnect' | 'gap' | 'evicted' | 'expired' | 'backlog' | 'stall';

/** A tab:up as it travels in the stream: with the socket it took over, if any. */
type WireOp = IndexOp & { replaces?: string };

interface LoadedView {
  lastId: string;
  seq: number;
  states: Map<string, NodeShares>;
}

/** Connection settings shared by the store's clients: fail fast, reconnect fast, never queue. */
function storeClientOptions(name: string, commandTimeoutMs: number): RedisOptions {
  return {
    connectionName: name,
    lazyConnect: true,
    // A command issued while Redis is away fails at once instead of piling up in memory: the
    // store's recovery re-sends the node's whole state anyway.
    enableOfflineQueue: false,
    // Kept on (the default): with it off, ioredis drops a command that was in flight when the
    // connection broke without ever settling its promise if the reconnection is quick, and the
    // reader loop would wait forever. Re-sent commands are harmless: every write is idempotent
    // and a recovery follows any reconnection.
    autoResendUnfulfilledCommands: true,
    maxRetriesPerRequest: 1,
    // The last guard against a command that never settles (the reader's includes its BLOCK time).
    commandTimeout: commandTimeoutMs,
    // Redis back => converged quickly: retry every 50..500 ms, forever.
    retryStrategy: (times: number) => Math.min(times * 50, 500),
    connectTimeout: 2_000,
    // ioredis waits this long for a closing socket; closing twice would otherwise hold the process for 2 s.
    disconnectTimeout: 200,
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class RedisStore implements ClusterStore {
  readonly nodeId: string;
  private readonly index: SessionIndex;
  private readonly keys: ClusterKeys;
  private readonly logger: Logger;
  private readonly metrics: ClusterMetrics;
  private readonly cmd: Redis;
  private readonly reader: Redis;
  /** Identifies this process in its alive key: a second process with the same node id shows up. */
  private readonly token = randomBytes(8).toString('hex');
  private readonly maxPendingOps: number;
  private readonly readBlockMs: number;

  private joined = false;
  private closing = false;
  private closed: Promise<void> | undefined;
  private loop: Promise<void> | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private ticking = false;
  private wake: (() => void) | undefined;
  private closeSignal!: () => void;
  /** Settles when the store starts closing: a read blocked on a dead connection is not waited for. */
  private readonly closingPromise = new Promise<null>((resolve) => {
    this.closeSignal = () => resolve(null);
  });
  private joinedSignal!: () => void;
  private readonly joinedPromise = new Promise<void>((resolve) => {
    this.joinedSignal = resolve;
  });

  /** Set while a recovery is owed; `recoveryRequests` tells a running recovery that another came in meanwhile. */
  private recovery: RecoveryReason | undefined = 'join';
  private recoveryRequests = 0;
  private recovering = false;
  private outageSince: number | undefined;
  private lastId = '0-0';
  private lastSeq = 0;

  private pendingOps: IndexOp[] = [];
  /** Rooms whose share of this node changed since the last write. */
  private readonly dirty = new Map<string, RoomRef>();
  private flushScheduled = false;
  private flushing = false;
  /** Every live claim on every tab, this node's and the others' (tab key -> socket id -> claim); the index holds each tab's winner. */
  private readonly claims = new TabClaims();
  /** Local sockets already handed to onTabLost (once each, until their claim goes). */
  private readonly refusing = new Set<string>();
  /** Health ping: when the unanswered one was sent, and since when Redis is considered stalled. */
  private pingSentAt: number | undefined;
  private stalledSince: number | undefined;
  private pinger: NodeJS.Timeout | undefined;
  private readonly stallMs: number;
  /** Last heartbeat of each other node as seen by the last sweep (estimated from its key's remaining TTL). */
  private readonly lastBeat = new Map<string, number>();
  private lastSweepAt = 0;
  /** Other nodes this node has applied entries of (their sessions may be in the index). */
  private knownNodes = new Set<string>();
  /**
   * Known nodes a resync found nothing of in Redis, and since when. After a Redis restart every
   * node's state is gone until it re-states (within moments of Redis coming back): their sessions
   * are kept for one TTL rather than removed and re-added on every dashboard; the sweep removes
   * them if they do not come back.
   */
  private readonly absentSince = new Map<string, number>();
  private duplicateWarned = false;

  constructor(private readonly options: RedisStoreOptions) {
    this.nodeId = options.nodeId;
    this.index = options.index;
    this.keys = options.keys;
    this.logger = options.logger;
    this.metrics = options.metrics;
    this.maxPendingOps = options.maxPendingOps ?? 10_000;
    // The reader notices a recovery request or a close at the latest after one block.
    this.readBlockMs = Math.min(options.heartbeatMs, 1_000);
    this.stallMs = options.stallMs ?? 500;
    const target = { url: options.redisUrl, options: options.redisOptions ?? {}, describe: '' };
    this.cmd = redisClient(target, storeClientOptions(`hub:${this.nodeId}:store`, 10_000));
    this.reader = redisClient(target, storeClientOptions(`hub:${this.nodeId}:reader`, this.readBlockMs + 5_000));
    for (const [client, name] of [
      [this.cmd, 'store'],
      [this.reader, 'reader'],
    ] as const) {
      client.on('ready', () => this.wakeUp());
      client.on('close', () => this.connectionLost(name));
      client.on('error', (err: Error) => {
        this.metrics.redisErrors.inc({ client: name });
        // While Redis is away every reconnection attempt fails: one warning per outage is enough.
        if (this.outageSince === undefined) this.logger.warn({ client: name, err: err.message }, 'redis error');
        else this.logger.debug({ client: name, err: err.message }, 'redis error');
      });
    }
    this.metrics.partial.set(1);
  }

  // ---- ClusterStore ----

  publish(op: IndexOp): void {
    let wire: WireOp = op;
    if (op.type === 'tab:up') {
      const ref = { projectKey: op.projectKey, sessionId: op.sessionId };
      const held = findTab(this.index.room(op.projectKey, op.sessionId), op.tab.tabId);
      // The live layer lets a tab held by another node's socket in only when that node is stale (mayReplace).
      const replaces = held && held.socketId !== op.tab.socketId && held.nodeId !== this.nodeId ? held.socketId : undefined;
      const previous = this.claims.get(ref, op.tab.tabId, op.tab.socketId);
      const claim: HeldClaim = { ref, tab: op.tab, replaces: replaces ?? previous?.replaces, data: op.data ?? previous?.data };
      this.addClaim(claim);
      if (claim.replaces !== undefined) wire = { ...op, replaces: claim.replaces };
      this.settle(ref, op.tab.tabId, op.data);
    } else if (op.type === 'tab:down') {
      this.dropClaim(op.projectKey, op.sessionId, op.tabId, op.socketId);
      this.settle(op, op.tabId);
    } else {
      this.index.apply(op);
    }
    if (this.closing) return;
    if (op.type === 'node:down') {
      // Handlers never publish this; a node's own removal goes through close(true).
      return;
    }
    this.markDirty(op.projectKey, op.sessionId);
    if (this.pendingOps.length >= this.maxPendingOps) {
      // Redis cannot keep up: stop buffering and re-state the whole share once it can.
      this.metrics.opsDropped.inc(this.pendingOps.length + 1);
      this.pendingOps = [];
      this.requestRecovery('backlog');
      return;
    }
    this.pendingOps.push(wire);
    this.scheduleFlush();
  }

  /**
   * Whether a new socket may take `tab` over from the socket holding it: only from another node
   * whose heartbeat is already late (it was killed: its tab reconnecting here need not wait for
   * the eviction), and only while this node's own view of heartbeats is fresh.
   */
  mayReplace(tab: { nodeId: string }): boolean {
    if (tab.nodeId === this.nodeId || !this.joined || this.stalledSince !== undefined || !this.connected()) return false;
    const now = Date.now();
    if (now - this.lastSweepAt > 2 * this.options.heartbeatMs) return false;
    const beat = this.lastBeat.get(tab.nodeId);
    return beat !== undefined && now - beat > this.staleAfterMs();
  }

  /** A node silent this long is treated as dead for tab takeovers (three heartbeats, under the TTL). */
  private staleAfterMs(): number {
    return Math.min(3 * this.options.heartbeatMs, this.options.nodeTtlMs - this.options.heartbeatMs);
  }

  status(): StoreStatus {
    const connected = this.connected();
    if (this.closing) return { ready: this.joined, partial: true, reason: 'leaving the cluster' };
    if (!this.joined) {
      return { ready: false, partial: true, reason: connected ? 'joining the cluster: loading the view' : 'joining the cluster: Redis is unreachable' };
    }
    if (!connected) return { ready: true, partial: true, reason: 'Redis is unreachable: serving the last known view of other nodes' };
    if (this.stalledSince !== undefined) return { ready: true, partial: true, reason: `Redis is not answering (for ${Date.now() - this.stalledSince} ms): serving the last known view of other nodes` };
    if (this.recovery !== undefined || this.recovering) return { ready: true, partial: true, reason: 'resynchronising the cluster view' };
    return { ready: true, partial: false };
  }

  async start(): Promise<void> {
    // Connection failures are retried by the clients themselves (retryStrategy) and reported by events.
    this.cmd.connect().catch(() => undefined);
    this.reader.connect().catch(() => undefined);
    this.heartbeat = setInterval(() => void this.tick(), this.options.heartbeatMs);
    this.heartbeat.unref();
    this.pinger = setInterval(() => this.checkHealth(), Math.max(10, Math.floor(this.stallMs / 2)));
    this.pinger.unref();
    this.loop = this.run();
    if (this.options.joinTimeoutMs > 0) await Promise.race([this.joinedPromise, sleep(this.options.joinTimeoutMs)]);
    if (!this.joined) this.logger.warn({ nodeId: this.nodeId, reason: this.status().reason }, 'cluster view not loaded yet: /ready answers 503 until it is');
  }

  close(handOff: boolean): Promise<void> {
    this.closed ??= this.leave(handOff);
    return this.closed;
  }

  // ---- leaving ----

  private async leave(handOff: boolean): Promise<void> {
    this.closing = true;
    this.closeSignal();
    clearInterval(this.heartbeat);
    clearInterval(this.pinger);
    this.wakeUp();
    if (handOff && this.cmd.status === 'ready') {
      try {
        // Every node drops this node's tabs and agents now, not after the heartbeat TTL.
        await withTimeout(downScript.run(this.cmd, this.downKeys(this.nodeId), [this.options.streamMaxLen, this.nodeId, this.nodeId, '0']), 2_000);
        this.logger.info({ nodeId: this.nodeId }, 'left the cluster: sessions handed off');
      } catch (err) {
        this.logger.warn({ err: errorMessage(err) }, 'could not hand off: other nodes remove this node after its heartbeat TTL');
      }
    }
    this.reader.disconnect();
    // Bounded: a recovery step waiting on a broken connection is abandoned, not awaited.
    await withTimeout(this.loop ?? Promise.resolve(), 2_000).catch(() => undefined);
    try {
      // QUIT lets in-flight writes finish; without a connection there is nothing to wait for.
      if (this.cmd.status === 'ready') await withTimeout(this.cmd.quit(), 1_000);
      else this.cmd.disconnect();
    } catch {
      this.cmd.disconnect();
    }
    this.metrics.partial.set(0);
  }

  // ---- connection state ----

  private connected(): boolean {
    return this.cmd.status === 'ready' && this.reader.status === 'ready';
  }

  /**
   * The health ping: Redis can stop answering without closing a connection (a frozen process, a
   * stalled host), and command timeouts notice that only after seconds. A PING unanswered for
   * `stallMs` marks the view partial at once; the first answer after a stall resynchronises.
   */
  private checkHealth(): void {
    if (this.closing) return;
    const now = Date.now();
    if (this.pingSentAt !== undefined) {
      if (this.stalledSince === undefined && now - this.pingSentAt >= this.stallMs) {
        this.stalledSince = this.pingSentAt;
        this.metrics.stalls.inc();
        this.metrics.partial.set(1);
        this.logger.warn({ stallMs: this.stallMs }, 'Redis is not answering: the cluster view is partial until it does');
      }
      return;
    }
    if (this.cmd.status !== 'ready') return;
    const sent = now;
    this.pingSentAt = sent;
    this.cmd.ping().then(
      () => {
        if (this.pingSentAt === sent) this.pingSentAt = undefined;
        const since = this.stalledSince;
        if (since === undefined) return;
        this.stalledSince = undefined;
        const stalledMs = Date.now() - since;
        this.metrics.stallSeconds.observe(stalledMs / 1000);
        this.logger.info({ stalledMs }, 'Redis answers again: resynchronising');
        // Whatever was in flight meanwhile may have timed out on one side only: reload to be sure.
        this.requestRecovery('stall');
      },
      () => {
        if (this.pingSentAt === sent) this.pingSentAt = undefined;
      },
    );
  }

  private connectionLost(client: string): void {
    if (this.closing) return;
    if (this.outageSince === undefined) {
      this.outageSince = Date.now();
      if (this.joined) this.logger.warn({ client }, 'lost Redis: serving local sessions, other nodes\u2019 view is partial until it is back');
    }
    this.requestRecovery(this.joined ? 'reconnect' : 'join');
  }

  private requestRecovery(reason: RecoveryReason): void {
    this.recovery ??= reason;
    this.recoveryRequests++;
    this.metrics.partial.set(1);
    this.wakeUp();
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private waitForWake(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  // ---- the reader loop: the only place remote changes reach the index ----

  private async run(): Promise<void> {
    let backoffMs = 50;
    while (!this.closing) {
      if (!this.connected()) {
        await this.waitForWake(500);
        continue;
      }
      if (this.recovery !== undefined) {
        if (await this.recover(this.recovery)) backoffMs = 50;
        else {
          await this.waitForWake(backoffMs);
          backoffMs = Math.min(backoffMs * 2, 2_000);
        }
        continue;
      }
      await this.readBatch();
    }
  }

  /** Re-states this node's share, loads everyone's, reconciles the index. False when Redis failed meanwhile. */
  private async recover(reason: RecoveryReason): Promise<boolean> {
    const requests = this.recoveryRequests;
    this.recovering = true;
    try {
      await this.restate();
      const view = await this.loadView();
      if (this.closing) return true;
      this.applyView(view);
      this.lastId = view.lastId;
      this.lastSeq = view.seq;
      if (this.recoveryRequests === requests) this.recovery = undefined;
      this.metrics.resyncs.inc({ reason });
      const nodes = view.states.size + 1;
      if (!this.joined) {
        this.joined = true;
        this.logger.info({ nodeId: this.nodeId, nodes, sessions: this.index.size }, 'joined the cluster: view loaded');
        this.joinedSignal();
      } else {
        const outageMs = this.outageSince === undefined ? undefined : Date.now() - this.outageSince;
        this.logger.info({ reason, nodes, sessions: this.index.size, outageMs }, 'cluster view resynchronised');
      }
      this.outageSince = undefined;
      return true;
    } catch (err) {
      this.metrics.redisErrors.inc({ client: 'store' });
      this.logger.warn({ reason, err: errorMessage(err) }, 'cluster resync failed; retrying');
      return false;
    } finally {
      this.recovering = false;
      this.metrics.partial.set(this.status().partial ? 1 : 0);
    }
  }

  /** Replaces this node's saved share with its current one and tells every node (a state entry). */
  private async restate(): Promise<void> {
    const pairs: [string, string][] = [];
    for (const [field, share] of sharesOf(this.index, this.nodeId)) pairs.push([field, JSON.stringify(share)]);
    // This write covers every op and room change made so far; the claims it carries reach the
    // stream ahead of anything published later.
    this.pendingOps = [];
    this.dirty.clear();
    const args: (string | number)[] = [this.options.streamMaxLen, this.nodeId, this.options.nodeTtlMs, this.token, encodeStatePayload(pairs)];
    for (const [field, share] of pairs) args.push(field, share);
    const { keys } = this;
    await restateScript.run(this.cmd, [keys.node(this.nodeId), keys.seq, keys.stream, keys.nodes, keys.alive(this.nodeId)], args);
  }

  /** Every other live node's share, and the stream position they are complete up to. */
  private async loadView(): Promise<LoadedView> {
    const { keys } = this;
    // One transaction: the last entry and the node list are read at the same instant, so every
    // entry up to `lastId` is already reflected in the hashes read next, and anything later is
    // replayed by the reader (whole-state ops: replaying what a hash already shows is harmless).
    const tx = await this.cmd.multi().xrevrange(keys.stream, '+', '-', 'COUNT', 1).get(keys.seq).smembers(keys.nodes).exec();
    if (!tx || tx.some(([err]) => err)) throw new Error('loading the cluster view: transaction failed');
    const last = tx[0]?.[1] as [string, string[]][];
    const seq = Number(tx[1]?.[1] ?? 0);
    const members = ((tx[2]?.[1] ?? []) as string[]).filter((id) => id !== this.nodeId);

    const pipe = this.cmd.pipeline();
    for (const id of members) pipe.exists(keys.alive(id)).hgetall(keys.node(id));
    const replies = (await pipe.exec()) ?? [];
    const states = new Map<string, NodeShares>();
    members.forEach((id, i) => {
      const [aliveErr, alive] = replies[2 * i] ?? [];
      const [hashErr, hash] = replies[2 * i + 1] ?? [];
      if (aliveErr || hashErr) throw new Error(`loading node ${id}: ${errorMessage(aliveErr ?? hashErr)}`);
      // A node without a heartbeat is dead: the sweep removes it from Redis; it is not part of the view.
      if (alive !== 1) return;
      const { shares, invalid } = decodeShares(hash as Record<string, string>);
      if (invalid > 0) this.logger.warn({ node: id, invalid }, 'skipped undecodable fields of a node state');
      states.set(id, shares);
    });
    return { lastId: last[0]?.[0] ?? '0-0', seq: Number.isFinite(seq) ? seq : 0, states };
  }

  private applyView(view: LoadedView): void {
    const now = Date.now();
    for (const id of view.states.keys()) this.absentSince.delete(id);
    for (const id of this.knownNodes) if (!view.states.has(id) && !this.absentSince.has(id)) this.absentSince.set(id, now);
    const replaced = (id: string) => id !== this.nodeId && !this.absentSince.has(id);
    this.replaceStates(view.states, replaced);
    this.knownNodes = new Set([...view.states.keys(), ...this.absentSince.keys()]);
  }

  private async readBatch(): Promise<void> {
    let reply: [string, [string, string[]][]][] | null;
    try {
      const read = this.reader.xread('COUNT', 1000, 'BLOCK', this.readBlockMs, 'STREAMS', this.keys.stream, this.lastId) as Promise<[string, [string, string[]][]][] | null>;
      // ioredis may never settle a command whose connection broke once the client is disconnected.
      read.catch(() => undefined);
      reply = await Promise.race([read, this.closingPromise]);
    } catch (err) {
      if (!this.closing) {
        this.metrics.redisErrors.inc({ client: 'reader' });
        this.logger.debug({ err: errorMessage(err) }, 'stream read failed');
        this.requestRecovery('reconnect');
      }
      return;
    }
    for (const [, entries] of reply ?? []) {
      for (const [id, fields] of entries) {
        // A recovery requested meanwhile reloads from a fresh position: applying more is useless.
        if (this.recovery !== undefined || this.closing) return;
        this.applyEntry(id, fields);
      }
    }
  }

  private applyEntry(id: string, fields: string[]): void {
    const entry = new Map<string, string>();
    for (let i = 0; i + 1 < fields.length; i += 2) entry.set(fields[i] as string, fields[i + 1] as string);
    const seq = Number(entry.get('s'));
    if (seq !== this.lastSeq + 1) {
      this.logger.warn({ expected: this.lastSeq + 1, got: seq }, 'gap in the replicated stream: resynchronising');
      this.requestRecovery('gap');
      return;
    }
    this.lastSeq = seq;
    this.lastId = id;
    const node = entry.get('n') ?? '';
    const kind = entry.get('k');
    const payload = entry.get('p') ?? '';
    if (kind === EntryKind.down) {
      if (payload === this.nodeId) {
        // Another node found this one's heartbeat expired (a long pause) and removed its sessions.
        if (!this.closing) this.requestRecovery('evicted');
        return;
      }
      this.dropNode(payload);
      this.knownNodes.delete(payload);
      this.absentSince.delete(payload);
      this.metrics.entriesApplied.inc({ kind: 'down' });
      return;
    }
    if (node === this.nodeId) {
      // Our own writes were applied when made.
      return;
    }
    this.metrics.replicationLag.observe(Math.max(0, Date.now() - Number(id.slice(0, id.indexOf('-')))) / 1000);
    this.knownNodes.add(node);
    this.absentSince.delete(node);
    if (kind === EntryKind.ops) {
      const ops = this.parseOps(payload);
      if (!ops) return;
      for (const op of ops) this.applyRemote(op);
      this.metrics.entriesApplied.inc({ kind: 'ops' });
    } else if (kind === EntryKind.state) {
      const shares = decodeStatePayload(payload);
      if (!shares) {
        this.logger.warn({ node }, 'undecodable state entry: resynchronising');
        this.requestRecovery('gap');
        return;
      }
      this.replaceStates(new Map([[node, shares]]), (id) => id === node);
      this.metrics.entriesApplied.inc({ kind: 'state' });
    }
  }

  private parseOps(payload: string): IndexOp[] | undefined {
    let value: unknown;
    try {
      value = JSON.parse(payload);
    } catch {
      value = undefined;
    }
    if (Array.isArray(value) && value.every(isIndexOp)) return value;
    this.logger.warn('undecodable ops entry: resynchronising');
    this.requestRecovery('gap');
    return undefined;
  }

  /** Makes the claims and the index hold exactly `states` for the nodes `replaced` selects. */
  private replaceStates(states: ReadonlyMap<string, NodeShares>, replaced: (nodeId: string) => boolean): void {
    // Claims that lost here are not in the index, so reconcileOps does not see them: drop those the states no longer list.
    const stale: IndexOp[] = [];
    for (const { tab, ref } of this.claims.all()) {
      if (!replaced(tab.nodeId)) continue;
      const listed = states.get(tab.nodeId)?.get(roomField(ref.projectKey, ref.sessionId))?.tabs.some((t) => t.tabId === tab.tabId && t.socketId === tab.socketId);
      if (!listed) stale.push({ type: 'tab:down', ...ref, tabId: tab.tabId, socketId: tab.socketId });
    }
    for (const op of stale) this.applyRemote(op);
    for (const op of reconcileOps(this.index, states, replaced)) this.applyRemote(op);
  }

  /** Applies another node's op; tab ops go through the claims, so every node settles same-tab races alike. */
  private applyRemote(op: WireOp): void {
    if (op.type === 'tab:up') {
      const ref = { projectKey: op.projectKey, sessionId: op.sessionId };
      const previous = this.claims.get(ref, op.tab.tabId, op.tab.socketId);
      const replaces = typeof op.replaces === 'string' ? op.replaces : previous?.replaces;
      this.addClaim({ ref, tab: op.tab, replaces, data: op.data ?? previous?.data });
      this.settle(ref, op.tab.tabId, op.data);
      return;
    }
    if (op.type === 'tab:down') {
      this.dropClaim(op.projectKey, op.sessionId, op.tabId, op.socketId);
      this.settle(op, op.tabId);
      return;
    }
    if (op.type === 'node:down') {
      this.dropNode(op.nodeId);
      return;
    }
    this.applyTracked(op);
  }

  private addClaim(claim: HeldClaim): void {
    if (this.claims.add(claim)) this.metrics.tabConflicts.inc();
  }

  private dropClaim(projectKey: string, sessionId: string, tabId: string, socketId: string): void {
    this.refusing.delete(socketId);
    this.claims.drop({ projectKey, sessionId }, tabId, socketId);
  }

  /** A node left or died: its claims go (others' claims on its tabs may win now), then its tabs and agents. */
  private dropNode(nodeId: string): void {
    for (const { ref, tabId } of this.claims.dropNode(nodeId)) this.settle(ref, tabId);
    this.index.apply({ type: 'node:down', nodeId });
  }

  /**
   * Makes the index hold the winning claim of one tab (pickClaim), with `data` if an op brought
   * some, and refuses this node's sockets whose claims lost: their leave removes their claims
   * from every node.
   */
  private settle(where: RoomRef, tabId: string, data?: SessionData): void {
    // Only the ids: `where` may be a whole op, whose other fields must not leak into the ops built here.
    const ref: RoomRef = { projectKey: where.projectKey, sessionId: where.sessionId };
    const { winner, losers } = this.claims.decide(ref, tabId);
    const holder = findTab(this.index.room(ref.projectKey, ref.sessionId), tabId);
    const mine = (nodeId: string | undefined) => nodeId === this.nodeId;
    if (winner) {
      // The index keeps the newer of the room's data and this (a room left empty meanwhile has none).
      const withData = data ?? winner.data;
      this.applyTracked(withData ? { type: 'tab:up', ...ref, tab: winner.tab, data: withData } : { type: 'tab:up', ...ref, tab: winner.tab });
    } else {
      if (holder) this.applyTracked({ type: 'tab:down', ...ref, tabId, socketId: holder.socketId });
      if (data) this.applyTracked({ type: 'data', ...ref, data });
    }
    if (mine(holder?.nodeId) || mine(winner?.tab.nodeId)) this.markDirty(ref.projectKey, ref.sessionId);
    if (!this.options.onTabLost) return;
    const onTabLost = this.options.onTabLost;
    for (const claim of losers) {
      if (!mine(claim.tab.nodeId) || this.refusing.has(claim.tab.socketId)) continue;
      const socketId = claim.tab.socketId;
      this.refusing.add(socketId);
      this.logger.warn({ tabId, winner: winner?.tab.nodeId }, 'the same tab is connected here and on another node: the other claim keeps it');
      // Not from inside the handler that published the claim: the socket is refused on the next tick.
      queueMicrotask(() => onTabLost(socketId));
    }
  }

  /**
   * Applies an op and keeps this node's saved share current: when another node changes the data
   * of a session this node has tabs in, this node's share carries the new data too, so whichever
   * share a joining node reads, it finds the newest data.
   */
  private applyTracked(op: IndexOp): void {
    if (op.type === 'node:down') {
      this.dropNode(op.nodeId);
      return;
    }
    const { dataChanged } = this.index.apply(op);
    const room = this.index.room(op.projectKey, op.sessionId);
    if (room && dataChanged && hasTabOf(room, this.nodeId)) this.markDirty(op.projectKey, op.sessionId);
  }

  // ---- writes ----

  private markDirty(projectKey: string, sessionId: string): void {
    const field = roomField(projectKey, sessionId);
    if (!this.dirty.has(field)) this.dirty.set(field, { projectKey, sessionId });
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.flushing || this.closing) return;
    this.flushScheduled = true;
    // One write per event-loop turn gathers every op the turn's socket events made.
    setImmediate(() => {
      this.flushScheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.closing || (this.pendingOps.length === 0 && this.dirty.size === 0)) return;
    const ops = this.pendingOps;
    this.pendingOps = [];
    if (this.cmd.status !== 'ready') {
      // Not queued: the recovery that follows the reconnection re-states the whole share.
      this.metrics.opsDropped.inc(ops.length);
      this.dirty.clear();
      this.requestRecovery(this.joined ? 'reconnect' : 'join');
      return;
    }
    const args: (string | number)[] = [this.options.streamMaxLen, this.nodeId, ops.length > 0 ? JSON.stringify(ops) : ''];
    for (const [field, ref] of this.dirty) {
      const share = shareOf(this.index.room(ref.projectKey, ref.sessionId), this.nodeId);
      args.push(field, share ? JSON.stringify(share) : '');
    }
    this.dirty.clear();
    this.flushing = true;
    try {
      await publishScript.run(this.cmd, [this.keys.node(this.nodeId), this.keys.seq, this.keys.stream], args);
      this.metrics.opsPublished.inc(ops.length);
    } catch (err) {
      this.metrics.opsDropped.inc(ops.length);
      this.metrics.redisErrors.inc({ client: 'store' });
      this.logger.debug({ err: errorMessage(err) }, 'cluster write failed');
      this.requestRecovery(this.joined ? 'reconnect' : 'join');
    } finally {
      this.flushing = false;
      if (this.pendingOps.length > 0 || this.dirty.size > 0) this.scheduleFlush();
    }
  }

  // ---- heartbeat and sweep ----

  private async tick(): Promise<void> {
    if (this.ticking || this.closing || this.cmd.status !== 'ready') return;
    this.ticking = true;
    try {
      const previous = await heartbeatScript.run(this.cmd, [this.keys.alive(this.nodeId), this.keys.nodes], [this.token, this.options.nodeTtlMs, this.nodeId]);
      if (previous === null && this.joined && this.recovery === undefined) {
        // Our heartbeat had expired (a long pause): others may have removed our sessions already.
        this.requestRecovery('expired');
      } else if (typeof previous === 'string' && previous !== this.token && !this.duplicateWarned) {
        this.duplicateWarned = true;
        this.logger.error({ nodeId: this.nodeId }, 'another running process uses this NODE_ID: give every node its own');
      }
      await this.sweep();
    } catch (err) {
      this.metrics.redisErrors.inc({ client: 'store' });
      this.logger.debug({ err: errorMessage(err) }, 'heartbeat failed');
    } finally {
      this.ticking = false;
    }
    this.metrics.partial.set(this.status().partial ? 1 : 0);
  }

  /** Removes the nodes whose heartbeat expired, from Redis and (through the stream) from every view. */
  private async sweep(): Promise<void> {
    const members = await this.cmd.smembers(this.keys.nodes);
    const candidates = [...new Set([...members, ...this.knownNodes])].filter((id) => id !== this.nodeId);
    if (candidates.length === 0) {
      this.metrics.nodes.set(1);
      return;
    }
    const pipe = this.cmd.pipeline();
    for (const id of candidates) pipe.pttl(this.keys.alive(id));
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
      const result = await downScript.run(this.cmd, this.downKeys(id), [this.options.streamMaxLen, id, this.nodeId, '1']);
      if (result === 1) {
        this.metrics.evictions.inc();
        this.logger.warn({ node: id }, 'node stopped heartbeating: its sessions are removed from the cluster');
      } else if (result === 2 && this.knownNodes.has(id) && this.recovery === undefined) {
        // Redis has nothing of it (removed while we were away, or lost in a Redis restart and not
        // re-stated within a TTL): drop what we hold.
        const since = this.absentSince.get(id);
        if (since !== undefined && Date.now() - since < this.options.nodeTtlMs) continue;
        this.dropNode(id);
        this.knownNodes.delete(id);
        this.absentSince.delete(id);
      }
    }
    this.metrics.nodes.set(aliveNodes);
  }

  private downKeys(nodeId: string): string[] {
    const { keys } = this;
    return [keys.node(nodeId), keys.alive(nodeId), keys.nodes, keys.seq, keys.stream];
  }
}
