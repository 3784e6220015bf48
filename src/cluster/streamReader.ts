/**
 * The Redis store's reading side: one loop on a dedicated connection, the only place other nodes'
 * changes reach the index. It reads the ops stream (XREAD BLOCK) from the last entry applied and
 * applies other nodes' entries in stream order, so every node applies the same changes in the same
 * order; each entry's sequence number must follow the previous one, a gap (trimmed stream, Redis
 * restarted) asks for a recovery. When a recovery is owed the loop runs it (recovery.ts), with a
 * growing back-off while it fails, then reads on from where the recovery loaded the view.
 */
import type Redis from 'ioredis';
import type { IndexOp } from '../sessions/ops';
import { decodeStatePayload, isIndexOp } from './nodeState';
import { EntryKind } from './redisSchema';
import { isClosing } from './storePhase';
import { type RecoveryReason, type StorePart, errorMessage } from './storeSupport';

type XReadReply = [string, [string, string[]][]][] | null;

export interface StreamReaderOptions extends StorePart {
  reader: Redis;
  /** How long one XREAD blocks: the loop notices a recovery request or a close at the latest after it. */
  readBlockMs: number;
  /** Both store connections are up. */
  connected: () => boolean;
  /** The recovery the loop runs when one is owed; `run` is false when Redis failed meanwhile. */
  recovery: { owed(): boolean; run(): Promise<boolean> };
  requestRecovery: (reason: RecoveryReason) => void;
  /** Settles when the store starts leaving: a read blocked on a dead connection is not waited for. */
  closing: Promise<null>;
}

export class StreamReader {
  private lastId = '0-0';
  private lastSeq = 0;
  private wake: (() => void) | undefined;

  constructor(private readonly options: StreamReaderOptions) {}

  /** Reads on after `lastId`, whose sequence number is `seq` (where a recovery loaded the view). */
  resumeFrom(lastId: string, seq: number): void {
    this.lastId = lastId;
    this.lastSeq = seq;
  }

  /** Ends a wait of the loop (Redis is back, a recovery was asked for, the store is leaving). */
  wakeUp(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  async run(): Promise<void> {
    const { phase, connected, recovery } = this.options;
    let backoffMs = 50;
    while (!isClosing(phase())) {
      if (!connected()) {
        await this.waitForWake(500);
        continue;
      }
      if (recovery.owed()) {
        if (await recovery.run()) backoffMs = 50;
        else {
          await this.waitForWake(backoffMs);
          backoffMs = Math.min(backoffMs * 2, 2_000);
        }
        continue;
      }
      await this.readBatch();
    }
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

  private async readBatch(): Promise<void> {
    const { reader, keys, metrics, logger, phase, recovery } = this.options;
    let reply: XReadReply;
    try {
      const read = reader.xread('COUNT', 1000, 'BLOCK', this.options.readBlockMs, 'STREAMS', keys.stream, this.lastId) as Promise<XReadReply>;
      // ioredis may never settle a command whose connection broke once the client is disconnected.
      read.catch(() => undefined);
      reply = await Promise.race([read, this.options.closing]);
    } catch (err) {
      if (!isClosing(phase())) {
        metrics.redisErrors.inc({ client: 'reader' });
        logger.debug({ err: errorMessage(err) }, 'stream read failed');
        this.options.requestRecovery('reconnect');
      }
      return;
    }
    for (const [, entries] of reply ?? []) {
      for (const [id, fields] of entries) {
        // A recovery requested meanwhile reloads from a fresh position: applying more is useless.
        if (recovery.owed() || isClosing(phase())) return;
        this.applyEntry(id, fields);
      }
    }
  }

  private applyEntry(id: string, fields: string[]): void {
    const { nodeId, view, nodes, metrics, logger } = this.options;
    const entry = new Map<string, string>();
    for (let i = 0; i + 1 < fields.length; i += 2) entry.set(fields[i] as string, fields[i + 1] as string);
    const seq = Number(entry.get('s'));
    if (seq !== this.lastSeq + 1) {
      logger.warn({ expected: this.lastSeq + 1, got: seq }, 'gap in the replicated stream: resynchronising');
      this.options.requestRecovery('gap');
      return;
    }
    this.lastSeq = seq;
    this.lastId = id;
    const node = entry.get('n') ?? '';
    const kind = entry.get('k');
    const payload = entry.get('p') ?? '';
    if (kind === EntryKind.down) {
      if (payload === nodeId) {
        // Another node found this one's heartbeat expired (a long pause) and removed its sessions.
        this.options.requestRecovery('evicted');
        return;
      }
      view.dropNode(payload);
      nodes.gone(payload);
      metrics.entriesApplied.inc({ kind: 'down' });
      return;
    }
    if (node === nodeId) {
      // Our own writes were applied when made.
      return;
    }
    metrics.replicationLag.observe(Math.max(0, Date.now() - Number(id.slice(0, id.indexOf('-')))) / 1000);
    nodes.seen(node);
    if (kind === EntryKind.ops) {
      const ops = this.parseOps(payload);
      if (!ops) return;
      for (const op of ops) view.applyRemote(op);
      metrics.entriesApplied.inc({ kind: 'ops' });
    } else if (kind === EntryKind.state) {
      const shares = decodeStatePayload(payload);
      if (!shares) {
        logger.warn({ node }, 'undecodable state entry: resynchronising');
        this.options.requestRecovery('gap');
        return;
      }
      view.replaceStates(new Map([[node, shares]]), (id) => id === node);
      metrics.entriesApplied.inc({ kind: 'state' });
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
    this.options.logger.warn('undecodable ops entry: resynchronising');
    this.options.requestRecovery('gap');
    return undefined;
  }
}
