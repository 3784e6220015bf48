/**
 * The cluster store: every node's index replicated through Redis (see docs/cluster.md). This file
 * composes the parts and holds the one thing they share, the store's phase (storePhase.ts):
 * - replicaView.ts: the index plus every tab claim; local and remote ops reach the index there;
 * - opsWriter.ts: this node's ops and share, batched per event-loop turn, one atomic script each;
 * - streamReader.ts: the XREAD loop applying other nodes' entries in stream order, and running
 *   the recovery when one is owed;
 * - recovery.ts: re-state this node, load every node's share, reconcile;
 * - liveness.ts: heartbeats, the sweep of dead nodes, takeovers, the health ping (stalls).
 * The parts report what they see (a reload is needed, a stall, a view loaded); only this file
 * changes the phase, through nextPhase.
 */
import { randomBytes } from 'node:crypto';
import type Redis from 'ioredis';
import type { RedisOptions } from 'ioredis';
import type { Logger } from '../ops/logger';
import type { IndexOp } from '../sessions/ops';
import type { SessionIndex } from '../sessions/sessionIndex';
import { redisClient } from './connection';
import { KnownNodes, Liveness } from './liveness';
import type { ClusterMetrics } from './metrics';
import { OpsWriter } from './opsWriter';
import { Recovery } from './recovery';
import { type ClusterKeys, DEFAULT_STREAM_MAX_BYTES, type StreamBound, boundArgs, downScript, streamKeys } from './redisSchema';
import { ReplicaView } from './replicaView';
import type { ClusterStore, StoreStatus } from './store';
import { type PhaseEvent, type StorePhase, hasJoined, isClosing, nextPhase, phaseStatus } from './storePhase';
import { StreamReader } from './streamReader';
import { type RecoveryReason, type StorePart, errorMessage, sleep, storeClientOptions, withTimeout } from './storeSupport';

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
  /** Bytes the ops stream is trimmed to (redisSchema.ts's StreamBound); default DEFAULT_STREAM_MAX_BYTES. */
  streamMaxBytes?: number;
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

export class RedisStore implements ClusterStore {
  readonly nodeId: string;
  private phase: StorePhase = 'joining';
  private readonly logger: Logger;
  private readonly metrics: ClusterMetrics;
  private readonly cmd: Redis;
  private readonly reader: Redis;
  private readonly view: ReplicaView;
  private readonly writer: OpsWriter;
  private readonly recovery: Recovery;
  private readonly stream: StreamReader;
  private readonly liveness: Liveness;
  private readonly streamBound: StreamBound;
  /** Since when Redis is lost (one warning per outage); cleared by the recovery after it. */
  private outageSince: number | undefined;
  private closed: Promise<void> | undefined;
  private loop: Promise<void> | undefined;
  private closeSignal!: () => void;
  private readonly closingPromise = new Promise<null>((resolve) => {
    this.closeSignal = () => resolve(null);
  });
  private joinedSignal!: () => void;
  private readonly joinedPromise = new Promise<void>((resolve) => {
    this.joinedSignal = resolve;
  });

  constructor(private readonly options: RedisStoreOptions) {
    const { nodeId, keys, logger, metrics } = options;
    this.nodeId = nodeId;
    this.logger = logger;
    this.metrics = metrics;
    // The reader notices a recovery request or a close at the latest after one block.
    const readBlockMs = Math.min(options.heartbeatMs, 1_000);
    const target = { url: options.redisUrl, options: options.redisOptions ?? {}, describe: '' };
    this.cmd = redisClient(target, storeClientOptions(`hub:${nodeId}:store`, 10_000));
    this.reader = redisClient(target, storeClientOptions(`hub:${nodeId}:reader`, readBlockMs + 5_000));
    // Identifies this process in its alive key: a second process with the same node id shows up.
    const token = randomBytes(8).toString('hex');
    const phase = () => this.phase;
    const connected = () => this.connected();
    const requestRecovery = (reason: RecoveryReason) => this.requestRecovery(reason);
    const nodes = new KnownNodes();
    const streamBound: StreamBound = { maxLen: options.streamMaxLen, maxBytes: options.streamMaxBytes ?? DEFAULT_STREAM_MAX_BYTES };
    this.streamBound = streamBound;

    this.view = new ReplicaView({ nodeId, index: options.index, logger, metrics, onShareChanged: (ref) => this.writer.markDirty(ref), onTabLost: options.onTabLost });
    this.writer = new OpsWriter({
      nodeId,
      cmd: this.cmd,
      keys,
      streamBound,
      nodeTtlMs: options.nodeTtlMs,
      token,
      maxPendingOps: options.maxPendingOps ?? 10_000,
      logger,
      metrics,
      shareOf: (ref) => this.view.shareOf(ref),
      open: () => !isClosing(this.phase),
      onDropped: (why) => this.requestRecovery(why === 'backlog' ? 'backlog' : this.rejoinReason()),
    });
    // What the parts that read the view are given alike.
    const part: StorePart = { nodeId, cmd: this.cmd, keys, logger, metrics, view: this.view, nodes, phase };
    this.recovery = new Recovery({
      ...part,
      writer: this.writer,
      resumeFrom: (lastId, seq) => this.stream.resumeFrom(lastId, seq),
      onLoaded: (reason, count) => this.loaded(reason, count),
    });
    this.stream = new StreamReader({
      ...part,
      reader: this.reader,
      readBlockMs,
      connected,
      recovery: this.recovery,
      requestRecovery,
      closing: this.closingPromise,
    });
    this.liveness = new Liveness({
      ...part,
      heartbeatMs: options.heartbeatMs,
      nodeTtlMs: options.nodeTtlMs,
      stallMs: options.stallMs ?? 500,
      streamBound,
      token,
      connected,
      resyncOwed: () => this.recovery.owed(),
      requestRecovery,
      onStall: (event) => this.stall(event),
      afterTick: () => this.metrics.partial.set(this.status().partial ? 1 : 0),
    });
    for (const [client, name] of [
      [this.cmd, 'store'],
      [this.reader, 'reader'],
    ] as const) {
      client.on('ready', () => this.stream.wakeUp());
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
    const wire = this.view.applyLocal(op);
    // Handlers never publish node:down; a node's own removal goes through close(true).
    if (isClosing(this.phase) || op.type === 'node:down') return;
    this.writer.enqueue(wire, op);
  }

  mayReplace(tab: { nodeId: string }): boolean {
    return this.liveness.mayReplace(tab);
  }

  status(): StoreStatus {
    const since = this.liveness.stalledSince;
    return phaseStatus(this.phase, { connected: this.connected(), stalledForMs: since === undefined ? 0 : Date.now() - since });
  }

  async start(): Promise<void> {
    // Connection failures are retried by the clients themselves (retryStrategy) and reported by events.
    this.cmd.connect().catch(() => undefined);
    this.reader.connect().catch(() => undefined);
    this.liveness.start();
    this.loop = this.stream.run();
    if (this.options.joinTimeoutMs > 0) await Promise.race([this.joinedPromise, sleep(this.options.joinTimeoutMs)]);
    if (this.phase === 'joining') this.logger.warn({ nodeId: this.nodeId, reason: this.status().reason }, 'cluster view not loaded yet: /ready answers 503 until it is');
  }

  close(handOff: boolean): Promise<void> {
    this.closed ??= this.leave(handOff);
    return this.closed;
  }

  // ---- the phase: changed here only ----

  /** Moves the phase by `event`; false (and the phase stays) when the event means nothing in it. */
  private transition(event: PhaseEvent): boolean {
    const step = nextPhase(this.phase, event);
    if ('refused' in step) {
      this.logger.debug({ phase: this.phase, event, why: step.refused }, 'store phase unchanged');
      return false;
    }
    this.phase = step.phase;
    this.metrics.partial.set(this.status().partial ? 1 : 0);
    return true;
  }

  private requestRecovery(reason: RecoveryReason): void {
    if (!this.transition('resyncNeeded')) return;
    this.recovery.request(reason);
    this.stream.wakeUp();
  }

  private rejoinReason(): RecoveryReason {
    return hasJoined(this.phase) ? 'reconnect' : 'join';
  }

  private loaded(reason: RecoveryReason, nodes: number): void {
    const joining = this.phase === 'joining';
    this.transition('loaded');
    // Asked for again while this one ran: the loop runs another.
    if (this.recovery.owed()) this.transition('resyncNeeded');
    if (joining) {
      this.logger.info({ nodeId: this.nodeId, nodes, sessions: this.options.index.size }, 'joined the cluster: view loaded');
      this.joinedSignal();
      // A stall seen while joining did not change the phase; it counts from now on.
      if (this.liveness.stalledSince !== undefined) this.transition('stallSeen');
    } else {
      const outageMs = this.outageSince === undefined ? undefined : Date.now() - this.outageSince;
      this.logger.info({ reason, nodes, sessions: this.options.index.size, outageMs }, 'cluster view resynchronised');
    }
    this.outageSince = undefined;
  }

  private stall(event: 'stallSeen' | 'stallOver'): void {
    this.transition(event);
    // Whatever was in flight meanwhile may have timed out on one side only: reload to be sure.
    if (event === 'stallOver') this.requestRecovery('stall');
  }

  // ---- connections ----

  private connected(): boolean {
    return this.cmd.status === 'ready' && this.reader.status === 'ready';
  }

  private connectionLost(client: string): void {
    if (isClosing(this.phase)) return;
    if (this.outageSince === undefined) {
      this.outageSince = Date.now();
      if (hasJoined(this.phase)) this.logger.warn({ client }, 'lost Redis: serving local sessions, other nodes\u2019 view is partial until it is back');
    }
    this.requestRecovery(this.rejoinReason());
  }

  // ---- leaving ----

  private async leave(handOff: boolean): Promise<void> {
    this.transition('close');
    this.closeSignal();
    this.liveness.stop();
    this.stream.wakeUp();
    if (handOff && this.cmd.status === 'ready') {
      try {
        // Every node drops this node's tabs and agents now, not after the heartbeat TTL.
        const { keys } = this.options;
        await withTimeout(
          downScript.run(this.cmd, [keys.node(this.nodeId), keys.alive(this.nodeId), keys.nodes, ...streamKeys(keys)], [...boundArgs(this.streamBound), this.nodeId, this.nodeId, '0']),
          2_000,
        );
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
    if (this.phase === 'leaving') this.transition('left');
    this.metrics.partial.set(0);
  }
}
