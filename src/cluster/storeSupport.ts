/** What the Redis store's parts share: how their Redis clients behave, why a view is reloaded, small helpers. */
import type Redis from 'ioredis';
import type { RedisOptions } from 'ioredis';
import type { Logger } from '../ops/logger';
import type { KnownNodes } from './liveness';
import type { ClusterMetrics } from './metrics';
import type { ClusterKeys } from './redisSchema';
import type { ReplicaView } from './replicaView';
import type { StorePhase } from './storePhase';

/** What the parts that read the replicated view are given alike (built once by the store). */
export interface StorePart {
  nodeId: string;
  cmd: Redis;
  keys: ClusterKeys;
  logger: Logger;
  metrics: ClusterMetrics;
  view: ReplicaView;
  nodes: KnownNodes;
  phase: () => StorePhase;
}

/** Why the view is reloaded: the `reason` label of hub_cluster_resyncs_total. */
export type RecoveryReason = 'join' | 'reconnect' | 'gap' | 'evicted' | 'expired' | 'backlog' | 'stall';

/** Connection settings shared by the store's clients: fail fast, reconnect fast, never queue. */
export function storeClientOptions(name: string, commandTimeoutMs: number): RedisOptions {
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

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

export async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
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

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
