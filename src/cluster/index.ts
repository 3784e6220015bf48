/**
 * Picks the store for `startHub`: without REDIS_URL the single-node LocalStore (nothing but Node
 * needed); with it, the Redis store for the session index and the Redis adapter for room traffic.
 */
import type { Server } from 'socket.io';
import { ConfigError } from '../config';
import type { HubContext } from '../context';
import { RoomEvent } from '../protocol';
import type { SessionIndex } from '../sessions/sessionIndex';
import { redisTarget } from './connection';
import { createClusterMetrics } from './metrics';
import { clusterKeys } from './redisSchema';
import { RedisStore } from './redisStore';
import { attachRelay } from './relay';
import { type ClusterStore, LocalStore } from './store';

export function createStore(nodeId: string, index: SessionIndex, io: Server, ctx: Omit<HubContext, 'store'>): ClusterStore {
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
  attachRelay(io, { redis, nodeId, streamName: keys.relay, maxLen: config.clusterRelayMaxLen, logger: log, metrics });
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
    joinTimeoutMs: config.clusterJoinTimeoutMs,
    stallMs: config.clusterStallMs,
    logger: log,
    metrics,
    onTabLost: (socketId) => refuseTab(io, socketId),
  });
}

/**
 * The same refusal a duplicate tab gets on one node (live/rooms.ts), for the loser of a cross-node
 * race. Its leave is not silent: other nodes hold its claim, and the `tab:down` it publishes is what
 * removes it there (a silent refusal left ghosts on nodes that had shown it).
 */
function refuseTab(io: Server, socketId: string): void {
  const socket = io.of('/').sockets.get(socketId);
  if (!socket) return;
  socket.emit(RoomEvent.SESSION_ALREADY_CONNECTED);
  socket.disconnect(true);
}
