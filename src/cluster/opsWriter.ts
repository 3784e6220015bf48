/**
 * The Redis store's writes: this node's ops and the rooms of its share they changed, batched once
 * per event-loop turn, in stream entries of at most `maxBatchOps` ops, each one atomic script
 * (redisSchema.ts's publish); and the re-state, which replaces the whole share. Writes are
 * pipelined on the one connection (Redis runs them in the order sent), so an op does not wait for
 * the previous write's answer to reach this node's loop; while `maxInFlight` writes are
 * unanswered the next batch gathers (a busy node batches naturally). While Redis is unreachable,
 * or past `maxPendingOps`, ops are dropped, not queued: the recovery that follows re-states the
 * whole share.
 */
import type Redis from 'ioredis';
import type { Logger } from '../ops/logger';
import type { ClusterMetrics } from './metrics';
import { type NodeShares, type RoomRef, type RoomShare, encodeStatePayload, roomField } from './nodeState';
import { type ClusterKeys, type StreamBound, boundArgs, publishScript, restateScript, streamKeys } from './redisSchema';
import type { WireOp } from './replicaView';
import { errorMessage } from './storeSupport';

export interface OpsWriterOptions {
  nodeId: string;
  cmd: Redis;
  keys: ClusterKeys;
  streamBound: StreamBound;
  nodeTtlMs: number;
  /** Identifies this process in its alive key (set by the re-state). */
  token: string;
  maxPendingOps: number;
  /** Ops in one stream entry at most (a replica applies an entry in one go). */
  maxBatchOps?: number;
  /** While this many writes are unanswered, the next batch waits (gathers). */
  maxInFlight?: number;
  logger: Logger;
  metrics: ClusterMetrics;
  /** This node's saved share of a room as it is now (undefined: nothing left there). */
  shareOf: (ref: RoomRef) => RoomShare | undefined;
  /** Writes go out only while this says so (not once the store is leaving). */
  open: () => boolean;
  /** Ops were dropped (Redis unreachable or too slow): the whole share must be re-stated. */
  onDropped: (why: 'backlog' | 'write') => void;
}

/** Defaults of OpsWriterOptions' batch bounds (docs/performance.md, "Fourth pass", cluster). */
export const DEFAULT_MAX_BATCH_OPS = 256;
export const DEFAULT_MAX_IN_FLIGHT = 4;

export class OpsWriter {
  private pendingOps: WireOp[] = [];
  /** When the oldest of pendingOps was queued (performance.now()). */
  private pendingSince: number | undefined;
  /** Rooms whose share of this node changed since the last write. */
  private readonly dirty = new Map<string, RoomRef>();
  /** A flush is scheduled for the end of this turn. */
  private scheduled = false;
  private inFlight = 0;

  constructor(private readonly options: OpsWriterOptions) {}

  /** Queues an op of this node's sockets for the next batch (its room's share is written with it). */
  enqueue(op: WireOp, ref: RoomRef): void {
    this.markDirty(ref);
    if (this.pendingOps.length >= this.options.maxPendingOps) {
      // Redis cannot keep up: stop buffering and re-state the whole share once it can.
      this.options.metrics.opsDropped.inc(this.pendingOps.length + 1);
      this.pendingOps = [];
      this.pendingSince = undefined;
      this.options.onDropped('backlog');
      return;
    }
    this.pendingSince ??= performance.now();
    this.pendingOps.push(op);
    this.schedule();
  }

  markDirty(ref: RoomRef): void {
    const field = roomField(ref.projectKey, ref.sessionId);
    if (!this.dirty.has(field)) this.dirty.set(field, { projectKey: ref.projectKey, sessionId: ref.sessionId });
    this.schedule();
  }

  /** Replaces this node's saved share with `shares` and tells every node (a state entry); also its membership and heartbeat. */
  async restate(shares: NodeShares): Promise<void> {
    const { nodeId, keys, cmd } = this.options;
    const pairs: [string, string][] = [];
    for (const [field, share] of shares) pairs.push([field, JSON.stringify(share)]);
    // This write covers every op and room change made so far; the claims it carries reach the
    // stream ahead of anything published later.
    this.pendingOps = [];
    this.pendingSince = undefined;
    this.dirty.clear();
    const args: (string | number)[] = [...boundArgs(this.options.streamBound), nodeId, this.options.nodeTtlMs, this.options.token, encodeStatePayload(pairs)];
    for (const [field, share] of pairs) args.push(field, share);
    // Batches are pipelined without the NOSCRIPT fallback (flush): the script is loaded ahead of
    // them, in this turn, so that it reaches Redis before any batch sent after the re-state.
    const loading = publishScript.load(cmd);
    await Promise.all([loading, restateScript.run(cmd, [keys.node(nodeId), keys.nodes, keys.alive(nodeId), ...streamKeys(keys)], args)]);
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= (this.options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT) || !this.options.open()) return;
    this.scheduled = true;
    // One write per event-loop turn gathers every op the turn's socket events made.
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  /**
   * Sends everything queued, in entries of at most `maxBatchOps` ops, pipelined. Not a cap on what
   * one turn sends: a node whose turns are long would then write slower than its sockets change
   * things, fall behind past maxPendingOps and re-state (see docs/performance.md).
   */
  private flush(): void {
    const { nodeId, cmd, metrics } = this.options;
    if (!this.options.open() || (this.pendingOps.length === 0 && this.dirty.size === 0)) return;
    const ops = this.pendingOps;
    const since = this.pendingSince;
    this.pendingOps = [];
    this.pendingSince = undefined;
    if (cmd.status !== 'ready') {
      // Not queued: the recovery that follows the reconnection re-states the whole share.
      metrics.opsDropped.inc(ops.length);
      this.dirty.clear();
      this.options.onDropped('write');
      return;
    }
    // The changed rooms' shares as they are now travel with the first entry: the hash may be ahead
    // of the stream for a moment, never behind it (a loader replays later entries harmlessly).
    const shares: string[] = [];
    for (const [field, ref] of this.dirty) {
      const share = this.options.shareOf(ref);
      shares.push(field, share ? JSON.stringify(share) : '');
    }
    this.dirty.clear();
    const cap = this.options.maxBatchOps ?? DEFAULT_MAX_BATCH_OPS;
    for (let first = 0; first === 0 || first < ops.length; first += cap) {
      const batch = ops.length <= cap ? ops : ops.slice(first, first + cap);
      const args: (string | number)[] = [...boundArgs(this.options.streamBound), nodeId, batch.length > 0 ? JSON.stringify(batch) : ''];
      if (first === 0) args.push(...shares);
      void this.write(batch.length, args, since);
    }
  }

  private async write(opCount: number, args: (string | number)[], since: number | undefined): Promise<void> {
    const { nodeId, keys, cmd, metrics } = this.options;
    this.inFlight++;
    try {
      // A NOSCRIPT (script cache flushed) fails the write: the re-state that follows loads it again.
      await publishScript.run(cmd, [keys.node(nodeId), ...streamKeys(keys)], args, false);
      metrics.opsPublished.inc(opCount);
      if (since !== undefined && opCount > 0) metrics.writeSeconds.observe((performance.now() - since) / 1000);
    } catch (err) {
      metrics.opsDropped.inc(opCount);
      metrics.redisErrors.inc({ client: 'store' });
      this.options.logger.debug({ err: errorMessage(err) }, 'cluster write failed');
      this.options.onDropped('write');
    } finally {
      this.inFlight--;
      if (this.pendingOps.length > 0 || this.dirty.size > 0) this.schedule();
    }
  }
}
