/**
 * Every Prometheus metric of the hub, in one place. No per-session labels: label values are
 * bounded sets (roles, routes, status codes, event kinds), in snake_case, and the known ones are
 * exported at 0 from the start (a series that appears only after its first event breaks `rate()`
 * and alerts on absence).
 */
import { readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { LOOP_STALL_COUNTED_MS } from './loopStalls';

export type Metrics = ReturnType<typeof createMetrics>;

/** Roles of Socket.IO connections. */
export const CONNECTION_ROLES = ['session', 'agent', 'dashboard'] as const;
/** Why handshakes are refused (handshake.ts's reasons, snake_cased, and the connection handlers'). */
export const CONNECT_REFUSAL_REASONS = ['identity', 'peer_id', 'session_info', 'authentication', 'authorization', 'agent_info', 'duplicate_tab', 'dashboard_auth', 'too_many_tabs', 'max_connections', 'upgrade_queue_full', 'not_ready', 'connect_pending'] as const;
export const RELAY_DIRECTIONS = ['tab_to_room', 'tab_to_agents', 'agent_to_tab', 'agent_to_agent'] as const;
export const SUBSCRIPTION_RESYNC_REASONS = ['unknown_subscription', 'slow_consumer', 'history'] as const;

/** A label value in snake_case: `peerId` -> `peer_id`. */
export function snakeCase(value: string): string {
  return value.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** The package's version (package.json sits two levels up from both src/ops and dist/ops). */
function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * A reading taken once per scrape: the first gauge of a scrape that asks reads it, the others of
 * the same scrape share it. prom-client calls every gauge's `collect` in one synchronous pass, so
 * the reading is dropped at the next microtask.
 */
export function perScrape<T>(read: () => T): () => T {
  let value: T | undefined;
  let taken = false;
  const drop = (): void => {
    taken = false;
    value = undefined;
  };
  return () => {
    if (!taken) {
      value = read();
      taken = true;
      queueMicrotask(drop);
    }
    return value as T;
  };
}

/** Replaces a default gauge by one of the same name, help and labels with another `collect`. */
function regauge(registry: Registry, name: string, labelNames: string[], collect: (this: Gauge<string>) => void): void {
  const existing = registry.getSingleMetric(name) as (Gauge<string> & { help?: string }) | undefined;
  if (!existing) return;
  const help = existing.help ?? name;
  registry.removeSingleMetric(name);
  new Gauge({ name, help, labelNames, registers: [registry], collect });
}

/** Counts `items` by type, as prom-client's own gauges do (a type that went away leaves no series). */
function setByType<T>(gauge: Gauge<string>, items: readonly T[], typeOf: (item: T) => string | undefined): void {
  const counts = new Map<string, number>();
  for (const item of items) {
    const type = typeOf(item);
    if (type !== undefined) counts.set(type, (counts.get(type) ?? 0) + 1);
  }
  gauge.reset();
  for (const [type, count] of counts) gauge.set({ type }, count);
}

/** prom-client's metrics that list every handle (socket, timer...) on the event loop at each scrape. */
export const HANDLE_LISTING_METRICS = ['nodejs_active_handles', 'nodejs_active_handles_total', 'nodejs_active_resources', 'nodejs_active_resources_total'] as const;

/**
 * prom-client lists every handle (and every resource) twice per scrape, once for the gauge by type
 * and once for its total; with 19,000 sockets each listing is an array of 19,000. Kept on
 * (METRICS_ACTIVE_HANDLES), the four series stay as they are, from one listing of each per scrape.
 */
function listHandlesOncePerScrape(registry: Registry): void {
  const node = process as NodeJS.Process & { _getActiveHandles?: () => unknown[] };
  const handles = perScrape(() => node._getActiveHandles?.() ?? []);
  const resources = perScrape(() => process.getActiveResourcesInfo?.() ?? []);
  regauge(registry, 'nodejs_active_handles', ['type'], function (this: Gauge<string>) {
    setByType(this, handles(), (handle) => (handle as { constructor?: { name?: string } } | null)?.constructor?.name);
  });
  regauge(registry, 'nodejs_active_handles_total', [], function (this: Gauge<string>) {
    this.set(handles().length);
  });
  regauge(registry, 'nodejs_active_resources', ['type'], function (this: Gauge<string>) {
    setByType(this, resources(), (resource) => resource);
  });
  regauge(registry, 'nodejs_active_resources_total', [], function (this: Gauge<string>) {
    this.set(resources().length);
  });
}

/**
 * prom-client fills some default gauges from a sibling's `collect` (one reading sets several
 * families). A scrape that asks for one of them without its sibling runs the sibling's `collect`
 * too, or it would read whatever the previous full scrape left there.
 */
export const SET_BY_SIBLING: Readonly<Record<string, string>> = {
  nodejs_eventloop_lag_min_seconds: 'nodejs_eventloop_lag_seconds',
  nodejs_eventloop_lag_max_seconds: 'nodejs_eventloop_lag_seconds',
  nodejs_eventloop_lag_mean_seconds: 'nodejs_eventloop_lag_seconds',
  nodejs_eventloop_lag_stddev_seconds: 'nodejs_eventloop_lag_seconds',
  nodejs_eventloop_lag_p50_seconds: 'nodejs_eventloop_lag_seconds',
  nodejs_eventloop_lag_p90_seconds: 'nodejs_eventloop_lag_seconds',
  nodejs_eventloop_lag_p99_seconds: 'nodejs_eventloop_lag_seconds',
  nodejs_heap_size_used_bytes: 'nodejs_heap_size_total_bytes',
  nodejs_external_memory_bytes: 'nodejs_heap_size_total_bytes',
  nodejs_heap_space_size_used_bytes: 'nodejs_heap_space_size_total_bytes',
  nodejs_heap_space_size_available_bytes: 'nodejs_heap_space_size_total_bytes',
  process_virtual_memory_bytes: 'process_resident_memory_bytes',
  process_heap_bytes: 'process_resident_memory_bytes',
  process_cpu_system_seconds_total: 'process_cpu_user_seconds_total',
  process_cpu_seconds_total: 'process_cpu_user_seconds_total',
};

/** At most this many `name` parameters in one /metrics request (the hub has about 50 families). */
export const MAX_METRIC_NAMES = 64;
/** A Prometheus metric name, of a bounded length. */
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]{0,199}$/;

/** Which families a /metrics request asks for: all of them, the named ones, or a refusal. */
export type MetricSelection = { kind: 'all' } | { kind: 'named'; names: ReadonlySet<string> } | { kind: 'refused'; message: string };

/**
 * Reads the `name` query parameter of /metrics (absent, one value or repeated). Each must be the
 * name of a family the hub exports (`hub_connections`, a histogram's `hub_diff_latency_seconds`,
 * a counter with its `_total`), at most MAX_METRIC_NAMES of them.
 */
export function selectMetrics(requested: unknown, exported: (name: string) => boolean): MetricSelection {
  if (requested === undefined) return { kind: 'all' };
  const values: unknown[] = Array.isArray(requested) ? requested : [requested];
  if (values.length > MAX_METRIC_NAMES) return { kind: 'refused', message: `at most ${MAX_METRIC_NAMES} name parameters` };
  const names = new Set<string>();
  for (const value of values) {
    if (typeof value !== 'string' || !METRIC_NAME.test(value)) return { kind: 'refused', message: 'name must be a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*, at most 200 characters)' };
    if (!exported(value)) return { kind: 'refused', message: `no metric named ${value}` };
    names.add(value);
  }
  return { kind: 'named', names };
}

/**
 * The Prometheus text of the selected families, in the registry's order and format, so that a
 * scrape naming every family reads the same as one naming none. Only the selected families (and
 * the siblings that fill them, SET_BY_SIBLING) are collected: an unasked family costs nothing.
 */
export async function renderMetrics(registry: Registry, selection: Exclude<MetricSelection, { kind: 'refused' }>): Promise<string> {
  if (selection.kind === 'all') return registry.metrics();
  const siblings = new Set<string>();
  for (const name of selection.names) {
    const sibling = SET_BY_SIBLING[name];
    if (sibling !== undefined && !selection.names.has(sibling)) siblings.add(sibling);
  }
  // prom-client calls `collect` synchronously at the start of `get()`: the siblings' run first.
  const filled = [...siblings].map((name) => registry.getSingleMetric(name)?.get());
  const texts = registry
    .getMetricsAsArray()
    .filter((metric) => selection.names.has(metric.name))
    .map((metric) => registry.getSingleMetricAsString(metric.name));
  await Promise.all(filled);
  return `${(await Promise.all(texts)).join('\n\n')}\n`;
}

export interface MetricsOptions {
  /** The longest event-loop stall (ms) since the previous call (src/ops/loopStalls.ts), read at each scrape. */
  loopStallMaxMs?: () => number;
  /** Keep HANDLE_LISTING_METRICS (METRICS_ACTIVE_HANDLES). */
  handleMetrics?: boolean;
}

export function createMetrics(options: MetricsOptions = {}) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 10 });
  // Each of these lists every handle, in the loop, at every scrape: with a storm's sockets open the
  // four together held the loop for a long turn per scrape (docs/performance.md). hub_connections and
  // process_open_fds count the same sockets for nothing.
  if (options.handleMetrics !== true) for (const name of HANDLE_LISTING_METRICS) registry.removeSingleMetric(name);
  else listHandlesOncePerScrape(registry);
  // prom-client counts open files with a synchronous readdir of /proc/self/fd: at 19,000 sockets
  // that held the event loop for the whole listing at every scrape (docs/performance.md). The
  // same count, listed off the loop (libuv's thread pool).
  if (registry.getSingleMetric('process_open_fds')) {
    registry.removeSingleMetric('process_open_fds');
    new Gauge({
      name: 'process_open_fds',
      help: 'Number of open file descriptors.',
      registers: [registry],
      async collect() {
        try {
          // Less the descriptor the listing itself holds open.
          this.set((await readdir('/proc/self/fd')).length - 1);
        } catch {
          // not Linux, or /proc unreadable: the gauge keeps its last value
        }
      },
    });
  }
  // prom-client's nodejs_eventloop_lag_max_seconds misses a stall that ends with a scrape (loopStalls.ts).
  new Gauge({
    name: 'hub_event_loop_stall_max_seconds',
    help: 'Longest event-loop stall since the previous scrape, the one under way included (a timer every 10 ms, how late it ran); unlike nodejs_eventloop_lag_max_seconds it cannot miss a stall that a scrape ends',
    registers: [registry],
    collect() {
      this.set((options.loopStallMaxMs?.() ?? 0) / 1000);
    },
  });
  // The gauge above is taken by whoever scrapes: with two scrapers (Prometheus and a bench, two
  // Prometheus replicas) each sees only the stalls since its own previous scrape went elsewhere.
  // A histogram of each stall is the same for every reader.
  const loopStalls = new Histogram({
    name: 'hub_event_loop_stalls_seconds',
    help: `Each event-loop stall of at least ${LOOP_STALL_COUNTED_MS} ms, counted when it ends (the same for every scraper, unlike hub_event_loop_stall_max_seconds)`,
    buckets: [0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const buildInfo = new Gauge({ name: 'hub_build_info', help: 'Always 1: the hub’s version and the Node.js version it runs on', labelNames: ['version', 'node_version'] as const, registers: [registry] });
  buildInfo.set({ version: packageVersion(), node_version: process.version }, 1);
  const metrics = {
    registry,
    /** Observes `stallMs` when it is long enough to count (LOOP_STALL_COUNTED_MS). */
    observeLoopStall(stallMs: number): void {
      if (stallMs >= LOOP_STALL_COUNTED_MS) loopStalls.observe(stallMs / 1000);
    },
    liveSessions: new Gauge({ name: 'hub_live_sessions', help: 'Live sessions in the index (cluster-wide view)', registers: [registry] }),
    connections: new Gauge({ name: 'hub_connections', help: 'Open Socket.IO connections on this node, by role', labelNames: ['role'] as const, registers: [registry] }),
    connectsRefused: new Counter({ name: 'hub_connects_refused_total', help: 'Handshakes refused, by reason', labelNames: ['reason'] as const, registers: [registry] }),
    eventsRelayed: new Counter({ name: 'hub_events_relayed_total', help: 'Room events relayed, by direction', labelNames: ['direction'] as const, registers: [registry] }),
    eventsDropped: new Counter({ name: 'hub_events_dropped_total', help: 'Socket events dropped because handling them failed (e.g. a payload the encoder cannot serialise)', registers: [registry] }),
    slowPeersDisconnected: new Counter({ name: 'hub_slow_peers_disconnected_total', help: 'Sockets disconnected because they did not read what was relayed to them (past RELAY_BUFFER_BYTES), by role', labelNames: ['role'] as const, registers: [registry] }),
    queuedLifecycleJobs: new Gauge({ name: 'hub_lifecycle_queue', help: 'WebSocket upgrades and teardown events waiting for their turn (LIFECYCLE_TURN_MS)', registers: [registry] }),
    maxConnections: new Gauge({ name: 'hub_max_connections', help: 'MAX_CONNECTIONS in force (0 = no cap); compare with hub_connections and process_open_fds / process_max_fds', registers: [registry] }),
    staleTabsReplaced: new Counter({ name: 'hub_stale_tabs_replaced_total', help: 'Tabs whose socket did not answer a ping when the same tab connected again: the newcomer took their place', registers: [registry] }),
    sessionUpdatesRejected: new Counter({ name: 'hub_session_updates_rejected_total', help: 'UPDATE_SESSION payloads refused (size, depth, shape)', registers: [registry] }),
    subscriptions: new Gauge({ name: 'hub_subscriptions', help: 'Live subscriptions held by dashboards (attached or awaiting resume)', registers: [registry] }),
    subscriptionCohorts: new Gauge({ name: 'hub_subscription_cohorts', help: 'Distinct live queries evaluated (subscriptions with equal parameters share one)', registers: [registry] }),
    diffsSent: new Counter({ name: 'hub_diffs_sent_total', help: 'sessions:diff messages sent to dashboards', registers: [registry] }),
    diffSessions: new Histogram({
      name: 'hub_diff_sessions',
      help: 'Sessions per diff (added + updated + removed)',
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500],
      registers: [registry],
    }),
    resyncs: new Counter({ name: 'hub_subscription_resyncs_total', help: 'Subscriptions answered or reset with a fresh snapshot, by reason', labelNames: ['reason'] as const, registers: [registry] }),
    diffLatency: new Histogram({
      name: 'hub_diff_latency_seconds',
      help: 'From the first index change a diff carries to the diff leaving the hub',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'hub_http_request_duration_seconds',
      help: 'Public API request durations (the session routes, /openapi.json and unmatched paths; not /health, /ready, /metrics or /debug), by route, method and status',
      labelNames: ['route', 'method', 'status'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
  };
  for (const role of CONNECTION_ROLES) metrics.connections.set({ role }, 0);
  for (const reason of CONNECT_REFUSAL_REASONS) metrics.connectsRefused.inc({ reason }, 0);
  for (const direction of RELAY_DIRECTIONS) metrics.eventsRelayed.inc({ direction }, 0);
  for (const reason of SUBSCRIPTION_RESYNC_REASONS) metrics.resyncs.inc({ reason }, 0);
  return metrics;
}
