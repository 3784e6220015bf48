/**
 * The cluster's Prometheus metrics, registered on the hub's registry (ops/metrics.ts holds the
 * rest). Created only in cluster mode, so a single node exports none of them.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type ClusterMetrics = ReturnType<typeof createClusterMetrics>;

export function createClusterMetrics(registry: Registry) {
  const registers = [registry];
  const metrics = {
    nodes: new Gauge({ name: 'hub_cluster_nodes', help: 'Cluster nodes alive at the last heartbeat sweep, this one included', registers }),
    partial: new Gauge({ name: 'hub_cluster_partial', help: '1 while this node may miss other nodes\u2019 changes (Redis unreachable, joining, resynchronising)', registers }),
    replicationLag: new Histogram({
      name: 'hub_cluster_replication_lag_seconds',
      help: 'From another node writing an index change to Redis to this node applying it (stream entry time; clocks of different hosts add their skew)',
      buckets: [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    writeSeconds: new Histogram({
      name: 'hub_cluster_write_seconds',
      help: 'From the oldest op of a batch being queued on this node to Redis answering its write (batching wait, Redis, the answer reaching the loop)',
      buckets: [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    resyncs: new Counter({ name: 'hub_cluster_resyncs_total', help: 'Full reloads of the cluster view from Redis, by reason (join, reconnect, gap, evicted, backlog, expired)', labelNames: ['reason'] as const, registers }),
    redisErrors: new Counter({ name: 'hub_cluster_redis_errors_total', help: 'Redis errors, by client (store, reader, relay)', labelNames: ['client'] as const, registers }),
    opsPublished: new Counter({ name: 'hub_cluster_ops_published_total', help: 'Index ops this node wrote to the replicated stream', registers }),
    opsDropped: new Counter({ name: 'hub_cluster_ops_dropped_total', help: 'Index ops not written (Redis unreachable or backlog full); the node re-states its share instead', registers }),
    entriesApplied: new Counter({ name: 'hub_cluster_entries_applied_total', help: 'Stream entries from other nodes applied here, by kind (ops, state, down)', labelNames: ['kind'] as const, registers }),
    evictions: new Counter({ name: 'hub_cluster_evictions_total', help: 'Nodes this node removed from the cluster after their heartbeat expired', registers }),
    stalls: new Counter({ name: 'hub_cluster_stalls_total', help: 'Times Redis stopped answering the health ping within CLUSTER_STALL_MS while connected (a frozen or stalled server)', registers }),
    stallSeconds: new Histogram({
      name: 'hub_cluster_stall_seconds',
      help: 'How long each Redis stall lasted, from the unanswered ping to the first answer',
      buckets: [0.5, 1, 2, 5, 10, 30, 60, 300],
      registers,
    }),
    tabConflicts: new Counter({ name: 'hub_cluster_tab_conflicts_total', help: 'Claims on a tab already held by another node\u2019s socket (same tabId accepted on two nodes at once)', registers }),
  };
  // The known label values, at 0 from the start (see ops/metrics.ts).
  for (const reason of ['join', 'reconnect', 'gap', 'evicted', 'backlog', 'expired']) metrics.resyncs.inc({ reason }, 0);
  for (const client of ['store', 'reader', 'relay']) metrics.redisErrors.inc({ client }, 0);
  for (const kind of ['ops', 'state', 'down']) metrics.entriesApplied.inc({ kind }, 0);
  return metrics;
}
