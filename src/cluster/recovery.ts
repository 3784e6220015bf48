/**
 * Reloading the view (join, reconnect, gap, eviction, expiry, backlog, after a stall), the same way
 * whatever the reason:
 * 1. re-state: this node's saved share is replaced by its current one, with a state entry (the
 *    other nodes replace what they hold of it);
 * 2. load: the last stream entry and the node list in one transaction, then every live node's share;
 * 3. reconcile: the index holds exactly the loaded shares of every other node (a node the load
 *    found nothing of keeps what it had for one TTL, see KnownNodes);
 * 4. the reader goes on after the entry taken in step 2 (whole-state ops replay harmlessly).
 * The stream reader's loop runs it while one is owed.
 */
import { type NodeShares, decodeShares } from './nodeState';
import type { OpsWriter } from './opsWriter';
import { isClosing } from './storePhase';
import { type RecoveryReason, type StorePart, errorMessage } from './storeSupport';

interface LoadedView {
  lastId: string;
  seq: number;
  /** Every other live node's share. */
  states: Map<string, NodeShares>;
}

export interface RecoveryOptions extends StorePart {
  writer: OpsWriter;
  /** Where the reader goes on from. */
  resumeFrom: (lastId: string, seq: number) => void;
  /** A recovery loaded the whole view (`nodes`: how many, this one included). */
  onLoaded: (reason: RecoveryReason, nodes: number) => void;
}

export class Recovery {
  /** The reason of the recovery owed, if one is (a node starts owing its join). */
  private reason: RecoveryReason | undefined = 'join';
  /** Tells a running recovery that another request came in meanwhile (it then stays owed). */
  private requests = 0;

  constructor(private readonly options: RecoveryOptions) {}

  owed(): boolean {
    return this.reason !== undefined;
  }

  /** Asks for a reload; the first reason asked for is the one counted. */
  request(reason: RecoveryReason): void {
    this.reason ??= reason;
    this.requests++;
  }

  /** Runs the owed recovery. False when Redis failed meanwhile (the loop retries it). */
  async run(): Promise<boolean> {
    const { view, writer, metrics, logger, nodeId } = this.options;
    const reason = this.reason ?? 'join';
    const requests = this.requests;
    try {
      await writer.restate(view.shares());
      const loaded = await this.load();
      if (isClosing(this.options.phase())) return true;
      const keepsOwn = this.options.nodes.loaded(new Set(loaded.states.keys()), Date.now());
      view.replaceStates(loaded.states, (id) => id !== nodeId && keepsOwn(id));
      this.options.resumeFrom(loaded.lastId, loaded.seq);
      if (this.requests === requests) this.reason = undefined;
      metrics.resyncs.inc({ reason });
      this.options.onLoaded(reason, loaded.states.size + 1);
      return true;
    } catch (err) {
      metrics.redisErrors.inc({ client: 'store' });
      logger.warn({ reason, err: errorMessage(err) }, 'cluster resync failed; retrying');
      return false;
    }
  }

  /** Every other live node's share, and the stream position they are complete up to. */
  private async load(): Promise<LoadedView> {
    const { cmd, keys, nodeId, logger } = this.options;
    // One transaction: the last entry and the node list are read at the same instant, so every
    // entry up to `lastId` is already reflected in the hashes read next, and anything later is
    // replayed by the reader (whole-state ops: replaying what a hash already shows is harmless).
    const tx = await cmd.multi().xrevrange(keys.stream, '+', '-', 'COUNT', 1).get(keys.seq).smembers(keys.nodes).exec();
    if (!tx || tx.some(([err]) => err)) throw new Error('loading the cluster view: transaction failed');
    const last = (tx[0]?.[1] ?? []) as [string, string[]][];
    const seq = Number(tx[1]?.[1] ?? 0);
    const members = ((tx[2]?.[1] ?? []) as string[]).filter((id) => id !== nodeId);

    const pipe = cmd.pipeline();
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
      if (invalid > 0) logger.warn({ node: id, invalid }, 'skipped undecodable fields of a node state');
      states.set(id, shares);
    });
    return { lastId: last[0]?.[0] ?? '0-0', seq: Number.isFinite(seq) ? seq : 0, states };
  }
}
