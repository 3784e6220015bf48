/**
 * Picks the store for `startHub`: without REDIS_URL the single-node LocalStore (nothing but Node
 * needed); with it, the Redis store for the session index and the Redis adapter for room traffic.
 */
import type { Server } from 'socket.io';
import { ConfigError } from '../config';
import type { HubContext } from '../context';
import type { SessionIndex } from '../sessions/sessionIndex';
import { redisTarget } from './connection';
import { createClusterMetrics } from './metrics';
import { clusterKeys } from './redisSchema';
import { RedisStore } from './redisStore';
import { attachRelay } from './relay';
import { type ClusterStore, LocalStore, type StoreHooks } from './store';

/**
 * `io` is only for the Socket.IO adapter of room traffic (relay.ts); what the store needs of the live
 * layer comes through `hooks` (the cluster layer never imports src/live/).
 */
export function createStore(nodeId: string, index: SessionIndex, io: Server, ctx: Omit<HubContext, 'store'>, hooks: StoreHooks): ClusterStore {
  const { config, logger } = ctx;
  const redis = redisTarget(config);
  if (redis === undefined) return new LocalStore(nodeId, index);
  if (config.clusterNodeTtlMs < 2 * config.clusterHeartbeatMs) {
    // One late heartbeat must not be enough to declare a node dead.
    throw new ConfigError(`invalid configuration: CLUSTER_NODE_TTL_MS (${config.clusterNodeTtlMs}) must be at least twice CLUSTER_HEARTBEAT_MS (${config.clusterHeartbeatMs})`);
  }
  const metrics = createClusterMetrics(ctx.metrics.registry);
  const keys = clusterKeys(config.redisPrefix);
  const log = logger.child({ component: 'cluster' });
  attachRelay(io, { redis, nodeId, keys, bound: { maxLen: config.clusterRelayMaxLen, maxBytes: config.clusterRelayMaxBytes }, logger: log, metrics });
  log.info({ nodeId, redis: redis.describe, prefix: config.redisPrefix, heartbeatMs: config.clusterHeartbeatMs, nodeTtlMs: config.clusterNodeTtlMs }, 'cluster mode: joining through Redis');
  return new RedisStore({
    nodeId,
    index,
    redisUrl: redis.url,
    redisOptions: redis.options,
    keys,
    heartbeatMs: config.clusterHeartbeatMs,
    nodeTtlMs: config.clusterNodeTtlMs,
    streamMaxLen: config.clusterStreamMaxLen,
    streamMaxBytes: config.clusterStreamMaxBytes,
    joinTimeoutMs: config.clusterJoinTimeoutMs,
    stallMs: config.clusterStallMs,
    logger: log,
    metrics,
    onTabLost: (socketId) => hooks.refuseTab(socketId),
  });
}
