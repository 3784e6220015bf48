/**
 * The Redis store's writes: this node's ops and the rooms of its share they changed, batched once
 * per event-loop turn with one write in flight at a time (a busy node batches naturally), each
 * batch one atomic script (redisSchema.ts's publish); and the re-state, which replaces the whole
 * share. While Redis is unreachable, or past `maxPendingOps`, ops are dropped, not queued: the
 * recovery that follows re-states the whole share.
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
  logger: Logger;
  metrics: ClusterMetrics;
  /** This node's saved share of a room as it is now (undefined: nothing left there). */
  shareOf: (ref: RoomRef) => RoomShare | undefined;
  /** Writes go out only while this says so (not once the store is leaving). */
  open: () => boolean;
  /** Ops were dropped (Redis unreachable or too slow): the whole share must be re-stated. */
  onDropped: (why: 'backlog' | 'write') => void;
}

/** Where the batch pump is: nothing to do, a write scheduled for the end of this turn, or one in flight. */
type Pump = 'idle' | 'scheduled' | 'writing';

export class OpsWriter {
  private pendingOps: WireOp[] = [];
  /** Rooms whose share of this node changed since the last write. */
  private readonly dirty = new Map<string, RoomRef>();
  private pump: Pump = 'idle';

  constructor(private readonly options: OpsWriterOptions) {}

  /** Queues an op of this node's sockets for the next batch (its room's share is written with it). */
  enqueue(op: WireOp, ref: RoomRef): void {
    this.markDirty(ref);
    if (this.pendingOps.length >= this.options.maxPendingOps) {
      // Redis cannot keep up: stop buffering and re-state the whole share once it can.
      this.options.metrics.opsDropped.inc(this.pendingOps.length + 1);
      this.pendingOps = [];
      this.options.onDropped('backlog');
      return;
    }
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
    this.dirty.clear();
    const args: (string | number)[] = [...boundArgs(this.options.streamBound), nodeId, this.options.nodeTtlMs, this.options.token, encodeStatePayload(pairs)];
    for (const [field, share] of pairs) args.push(field, share);
    await restateScript.run(cmd, [keys.node(nodeId), keys.nodes, keys.alive(nodeId), ...streamKeys(keys)], args);
  }

  private schedule(): void {
    if (this.pump !== 'idle' || !this.options.open()) return;
    this.pump = 'scheduled';
    // One write per event-loop turn gathers every op the turn's socket events made.
    setImmediate(() => {
      this.pump = 'idle';
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    const { nodeId, keys, cmd, metrics } = this.options;
    if (!this.options.open() || (this.pendingOps.length === 0 && this.dirty.size === 0)) return;
    const ops = this.pendingOps;
    this.pendingOps = [];
    if (cmd.status !== 'ready') {
      // Not queued: the recovery that follows the reconnection re-states the whole share.
      metrics.opsDropped.inc(ops.length);
      this.dirty.clear();
      this.options.onDropped('write');
      return;
    }
    const args: (string | number)[] = [...boundArgs(this.options.streamBound), nodeId, ops.length > 0 ? JSON.stringify(ops) : ''];
    for (const [field, ref] of this.dirty) {
      const share = this.options.shareOf(ref);
      args.push(field, share ? JSON.stringify(share) : '');
    }
    this.dirty.clear();
    this.pump = 'writing';
    try {
      await publishScript.run(cmd, [keys.node(nodeId), ...streamKeys(keys)], args);
      metrics.opsPublished.inc(ops.length);
    } catch (err) {
      metrics.opsDropped.inc(ops.length);
      metrics.redisErrors.inc({ client: 'store' });
      this.options.logger.debug({ err: errorMessage(err) }, 'cluster write failed');
      this.options.onDropped('write');
    } finally {
      this.pump = 'idle';
      if (this.pendingOps.length > 0 || this.dirty.size > 0) this.schedule();
    }
  }
}
