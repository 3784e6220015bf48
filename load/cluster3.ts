/**
 * The cluster3 scenario (`npm run bench -- --scenario cluster3`): --nodes hub processes (default 3)
 * on one throw-away redis-server, the tabs split evenly (tracker worker i holds node i's share).
 *
 * - REST search on every node, in --rest-rounds rounds, each round starting one node later: a
 *   node's figure does not depend on its place in the order (the first node measured used to run
 *   while the others were still settling after the connects, see docs/performance.md);
 * - cross-node freshness at each of --diff-rates: dashboards on the last node while tabs of the
 *   FIRST node change, and a probe tab on the first node whose every change is polled for through
 *   REST on the last node (change -> REST shows it);
 * - cross-node relay: agent<->tab pairs with the tab on the first node and the agent on the
 *   second, at --relay-pause-ms, then back to back (no pause) for the adapter's throughput.
 *
 * Around every measured phase each hub's CPU (/proc), GC (prom-client's nodejs_gc_duration_seconds
 * by kind), event-loop max and replication lag (its own histogram) are read, and Redis's CPU,
 * memory and the entries added to the two streams, so a figure can be put down to a process.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { Socket } from 'socket.io-client';
import { sleep } from './lib/async';
import { httpRequest, isRecord } from './lib/http';
import { chooseDefaultHubCommand, findFreePort, gcBetween, ManagedHub, parsePrometheusText, readProcessStats, waitReady, type GcWindow } from './lib/hub';
import type { BenchOptions } from './lib/options';
import { connectTrackers, runRest, type HubTarget } from './lib/phases';
import { sessionCountForTabs } from './lib/population';
import { RedisProcess } from './lib/redis';
import type { RelayRunResult } from './lib/relay';
import { renderTable } from './lib/report';
import { openSocket } from './lib/sockets';
import { ErrorCounts, LatencyHistogram, mergeHistograms, type ErrorCountsJson, type LatencySummary } from './lib/stats';
import { startWorkerSet, workerInit, type LoadWorker, type WorkerSet } from './lib/workers';
import { fmt, latency, pollHub, polledMetrics, writeResult } from './scenarios';

const REPO_ROOT = path.resolve(__dirname, '..');
const log = (message: string): void => {
  process.stdout.write(`${message}\n`);
};

/** The Redis keys of the hubs' default prefix (src/cluster/redisSchema.ts). */
const OPS_STREAM = 'hub:ops';
const RELAY_STREAM = 'hub:relay';
/** The probe tab's project: not one of the population's, so no dashboard follows it. */
const PROBE_PROJECT = 'cluster3probeproject';

/** What a key costs Redis, every element counted (null when Redis does not answer a number). */
function memoryUsage(redis: RedisProcess, key: string): number | null {
  const bytes = Number(redis.cli('MEMORY', 'USAGE', key, 'SAMPLES', '0'));
  return Number.isFinite(bytes) && bytes > 0 ? bytes : null;
}

interface Node {
  name: string;
  url: string;
  hub: ManagedHub;
  /** When its process was spawned: `--trace-gc` times (ms since the isolate started) map to epoch ms with it, give or take the start-up. */
  startedAtEpochMs: number;
}

/** What one hub looked like at one moment: its CPU time and its /metrics samples. */
interface HubSample {
  atMs: number;
  cpuSeconds: number | undefined;
  rssBytes: number | undefined;
  metrics: Map<string, number>;
}

/** A histogram of a hub's over one phase: observations, their mean, and the bucket bound under which 99% fall. */
interface HistogramWindow {
  n: number;
  meanMs: number | null;
  p99UpToMs: number | null;
}

function histogramWindow(a: Map<string, number>, b: Map<string, number>, name: string): HistogramWindow {
  const n = delta(a, b, `${name}_count`);
  return { n, meanMs: n > 0 ? (delta(a, b, `${name}_sum`) / n) * 1000 : null, p99UpToMs: bucketQuantileMs(a, b, name, 0.99) };
}

/** One hub over one phase. */
export interface HubWindow {
  name: string;
  cpuCores: number | null;
  /** Major (mark-compact) and minor (scavenge) collections and the time they took, prom-client's figures. */
  gc: GcWindow;
  /** prom-client's loop-lag max since the previous scrape (the one at the start of the phase). */
  loopMaxMs: number | null;
  /** Entries of other nodes applied here, and their replication lag (the hub's own histogram, bucket bounds). */
  replication: { entries: number; meanMs: number | null; p50UpToMs: number | null; p99UpToMs: number | null };
  /** This hub's writes (queued op to Redis's answer) and its diffs (first change to the diff leaving), its own histograms. */
  write: HistogramWindow;
  diffHub: HistogramWindow;
  rssBytes: number | null;
  /** Full reloads of the view by reason, ops this node could not write, and other nodes' whole-share state entries applied. */
  resyncs: Record<string, number>;
  opsDropped: number;
  stateEntriesApplied: number;
}

interface RedisSample {
  atMs: number;
  cpuSeconds: number | undefined;
  ops: { added: number; length: number } | undefined;
  relay: { added: number; length: number } | undefined;
}

export interface RedisWindow {
  cpuCores: number | null;
  opsEntriesPerSecond: number | null;
  relayEntriesPerSecond: number | null;
  usedMemoryBytes: number | null;
  rssBytes: number | null;
  opsStreamLength: number | null;
  relayStreamLength: number | null;
  /** Commands that held Redis longer than 10 ms during the phase (SLOWLOG): µs, and the command with its first key. */
  slow: Array<{ us: number; command: string }>;
}

async function scrapeAll(url: string): Promise<Map<string, number>> {
  try {
    const response = await httpRequest({ method: 'GET', url: `${url}/metrics`, timeoutMs: 10_000 });
    return response.status === 200 ? parsePrometheusText(response.body) : new Map();
  } catch {
    return new Map();
  }
}

async function sampleHub(node: Node): Promise<HubSample> {
  const metrics = await scrapeAll(node.url);
  const proc = node.hub.pid !== undefined ? readProcessStats(node.hub.pid) : undefined;
  return { atMs: performance.now(), cpuSeconds: proc?.cpuSeconds, rssBytes: proc?.rssBytes, metrics };
}

function sampleRedis(redis: RedisProcess): RedisSample {
  redis.slowCommands();
  const proc = redis.pid !== undefined ? readProcessStats(redis.pid) : undefined;
  return { atMs: performance.now(), cpuSeconds: proc?.cpuSeconds, ops: redis.streamCounts(OPS_STREAM), relay: redis.streamCounts(RELAY_STREAM) };
}

const delta = (a: Map<string, number>, b: Map<string, number>, key: string): number => (b.get(key) ?? 0) - (a.get(key) ?? 0);

/** The upper bound of the bucket holding quantile `q` of a Prometheus histogram's change between two scrapes. */
function bucketQuantileMs(a: Map<string, number>, b: Map<string, number>, name: string, q: number): number | null {
  const count = delta(a, b, `${name}_count`);
  if (count <= 0) return null;
  const buckets = [...b.keys()]
    .filter((key) => key.startsWith(`${name}_bucket{`))
    .map((key) => ({ le: Number(/le="([^"]+)"/.exec(key)?.[1]), n: delta(a, b, key) }))
    .filter((bucket) => !Number.isNaN(bucket.le))
    .sort((x, y) => x.le - y.le);
  const bound = buckets.find((bucket) => bucket.n >= q * count)?.le;
  return bound === undefined ? null : bound * 1000;
}

const stage = (h: HistogramWindow | undefined): string => (h && h.n > 0 ? `${fmt(h.meanMs, 1)} (${fmt(h.p99UpToMs, 0)})` : '-');

const replicationStage = (h: HubWindow | undefined): HistogramWindow | undefined => h && { n: h.replication.entries, meanMs: h.replication.meanMs, p99UpToMs: h.replication.p99UpToMs };

function hubWindow(name: string, a: HubSample, b: HubSample): HubWindow {
  const seconds = (b.atMs - a.atMs) / 1000;
  const lag = 'hub_cluster_replication_lag_seconds';
  const entries = delta(a.metrics, b.metrics, `${lag}_count`);
  // The hub's stall gauge, which a scrape cannot hide a stall from; prom-client's on another server.
  const loopMax = b.metrics.get('hub_event_loop_stall_max_seconds') ?? b.metrics.get('nodejs_eventloop_lag_max_seconds');
  return {
    name,
    cpuCores: a.cpuSeconds !== undefined && b.cpuSeconds !== undefined && seconds > 0 ? (b.cpuSeconds - a.cpuSeconds) / seconds : null,
    gc: gcBetween(a.metrics, b.metrics),
    loopMaxMs: loopMax !== undefined ? loopMax * 1000 : null,
    replication: {
      entries,
      meanMs: entries > 0 ? (delta(a.metrics, b.metrics, `${lag}_sum`) / entries) * 1000 : null,
      p50UpToMs: bucketQuantileMs(a.metrics, b.metrics, lag, 0.5),
      p99UpToMs: bucketQuantileMs(a.metrics, b.metrics, lag, 0.99),
    },
    write: histogramWindow(a.metrics, b.metrics, 'hub_cluster_write_seconds'),
    diffHub: histogramWindow(a.metrics, b.metrics, 'hub_diff_latency_seconds'),
    rssBytes: b.rssBytes ?? null,
    resyncs: Object.fromEntries(
      [...b.metrics.keys()].filter((key) => key.startsWith('hub_cluster_resyncs_total{') && delta(a.metrics, b.metrics, key) > 0).map((key) => [/reason="([^"]+)"/.exec(key)?.[1] ?? key, delta(a.metrics, b.metrics, key)]),
    ),
    opsDropped: delta(a.metrics, b.metrics, 'hub_cluster_ops_dropped_total'),
    stateEntriesApplied: delta(a.metrics, b.metrics, 'hub_cluster_entries_applied_total{kind="state"}'),
  };
}

function redisWindow(redis: RedisProcess, a: RedisSample, b: RedisSample): RedisWindow {
  const seconds = (b.atMs - a.atMs) / 1000;
  const rate = (x: { added: number } | undefined, y: { added: number } | undefined): number | null => (x !== undefined && y !== undefined && seconds > 0 ? (y.added - x.added) / seconds : null);
  const proc = redis.pid !== undefined ? readProcessStats(redis.pid) : undefined;
  return {
    cpuCores: a.cpuSeconds !== undefined && b.cpuSeconds !== undefined && seconds > 0 ? (b.cpuSeconds - a.cpuSeconds) / seconds : null,
    opsEntriesPerSecond: rate(a.ops, b.ops),
    relayEntriesPerSecond: rate(a.relay, b.relay),
    usedMemoryBytes: redis.usedMemoryBytes() ?? null,
    rssBytes: proc?.rssBytes ?? null,
    opsStreamLength: b.ops?.length ?? null,
    relayStreamLength: b.relay?.length ?? null,
    slow: redis.slowCommands(),
  };
}

/** Busy and total CPU time of the whole machine (/proc/stat, seconds), or undefined. */
function machineCpu(): { busy: number; total: number } | undefined {
  try {
    const fields = (fs.readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
    const total = fields.reduce((sum, n) => sum + n, 0);
    // idle and iowait are the 4th and 5th fields.
    return { busy: (total - (fields[3] ?? 0) - (fields[4] ?? 0)) / 100, total: total / 100 };
  } catch {
    return undefined;
  }
}

/** The whole box during one phase: busy cores (all processes, other people's too) and each load worker's CPU. */
export interface BoxWindow {
  machineBusyCores: number | null;
  workers: Record<string, number | null>;
}

/**
 * Every hub, Redis, every load worker and the machine around `run`: CPU, GC, loop max, replication
 * lag, streams. `workerCpuCores` sums the workers given (the phase's own load).
 */
async function observed<T>(nodes: Node[], redis: RedisProcess, all: LoadWorker[], workers: LoadWorker[], run: () => Promise<T>): Promise<{ value: T; hubs: HubWindow[]; redis: RedisWindow; workerCpuCores: number | null; box: BoxWindow }> {
  const cpuOf = (worker: LoadWorker): number | undefined => (worker.pid !== undefined ? readProcessStats(worker.pid)?.cpuSeconds : undefined);
  const workersBefore = all.map(cpuOf);
  const machineBefore = machineCpu();
  const redisBefore = sampleRedis(redis);
  const before = await Promise.all(nodes.map(sampleHub));
  const startedAt = performance.now();
  const value = await run();
  const seconds = (performance.now() - startedAt) / 1000;
  const after = await Promise.all(nodes.map(sampleHub));
  const redisAfter = sampleRedis(redis);
  const workersAfter = all.map(cpuOf);
  const machineAfter = machineCpu();
  const cores = (i: number): number | null => {
    const a = workersBefore[i];
    const b = workersAfter[i];
    return a !== undefined && b !== undefined && seconds > 0 ? (b - a) / seconds : null;
  };
  const mine = all.flatMap((worker, i) => (workers.includes(worker) ? [cores(i)] : []));
  return {
    value,
    hubs: nodes.map((node, i) => hubWindow(node.name, before[i] as HubSample, after[i] as HubSample)),
    redis: redisWindow(redis, redisBefore, redisAfter),
    workerCpuCores: mine.length > 0 && mine.every((n) => n !== null) ? mine.reduce((sum: number, n) => sum + (n ?? 0), 0) : null,
    box: {
      // The machine's clock ticks count every CPU: divided by wall time they are cores busy.
      machineBusyCores: machineBefore !== undefined && machineAfter !== undefined && seconds > 0 ? ((machineAfter.busy - machineBefore.busy) / (machineAfter.total - machineBefore.total)) * os.cpus().length : null,
      workers: Object.fromEntries(all.map((worker, i) => [worker.name, cores(i)])),
    },
  };
}

/**
 * A tab of its own on `from`, changing its metadata one value at a time until `until` settles;
 * each change is timed until REST on `to` (GET one session, polled back to back on one keep-alive
 * connection) shows it. A sample includes up to one REST round trip of polling granularity.
 */
async function restFreshness(from: Node, to: Node, options: BenchOptions, until: Promise<unknown>, errors: ErrorCounts): Promise<LatencySummary> {
  let settled = false;
  void until.finally(() => {
    settled = true;
  });
  const histogram = new LatencyHistogram();
  const sessionId = String(900_000_000 + Math.floor(Math.random() * 1e6));
  const tabId = 'probe';
  let probe: Socket | undefined;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const url = `${to.url}/api/v1/${PROBE_PROJECT}/assist/sessions/${sessionId}`;
  const probeValue = async (): Promise<string | undefined> => {
    const response = await httpRequest({ method: 'GET', url, headers: { authorization: options.apiKey }, agent, timeoutMs: 5_000 });
    if (response.status !== 200) return undefined;
    const body: unknown = JSON.parse(response.body);
    const metadata = isRecord(body) && isRecord(body.data) && isRecord(body.data.metadata) ? body.data.metadata : {};
    return typeof metadata.probe === 'string' ? metadata.probe : '';
  };
  try {
    probe = await openSocket(
      { url: from.url, socketPath: options.socketPath, apiKey: options.apiKey, jwtSecret: options.jwtSecret, population: { projectCount: 1, runTag: 'probe', startedAtMs: Date.now() } },
      {
        namespace: '',
        query: { peerId: `${PROBE_PROJECT}-${sessionId}-${tabId}`, identity: 'session', tabId, sessionInfo: JSON.stringify({ sessionID: sessionId, userID: 'probe', metadata: {}, timestamp: Date.now(), pageTitle: 'probe' }) },
        timeoutMs: 10_000,
      },
    );
    const deadline = performance.now() + 10_000;
    while ((await probeValue()) === undefined) {
      if (performance.now() > deadline) throw new Error(`the probe session never showed on ${to.name}`);
      await sleep(20);
    }
    for (let i = 0; !settled; i++) {
      const value = `p${i}`;
      const sentAt = performance.now();
      probe.emit('UPDATE_SESSION', { meta: { tabId }, data: { metadata: { probe: value } } });
      let seen = false;
      while (!seen && performance.now() - sentAt < 5_000) seen = (await probeValue()) === value;
      if (seen) histogram.record(performance.now() - sentAt);
      else errors.add(`rest freshness: change not shown on ${to.name} within 5 s`);
      // Spread the samples over time (and over the hubs' turns).
      await sleep(Math.random() * 20);
    }
  } catch (error) {
    errors.add(`rest freshness: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    probe?.disconnect();
    agent.destroy();
  }
  return histogram.summary();
}

const pct = (cores: number | null | undefined): string => `${fmt((cores ?? Number.NaN) * 100, 0)}%`;
const mib = (bytes: number | null | undefined): string => fmt((bytes ?? Number.NaN) / 1048576, 1);
const perHub = (hubs: HubWindow[], pick: (hub: HubWindow) => string): string => hubs.map(pick).join(' / ');
const gcOf = (hub: HubWindow): string => `${hub.gc.major}x ${fmt(hub.gc.majorMs, 0)} + ${fmt(hub.gc.minorMs, 0)} ms, ${hub.gc.over10ms} > 10 ms, ${hub.gc.over100ms} > 100 ms`;

/** `loadAverage1m`: the box's, taken by the caller before it started anything (build, redis, hubs, workers). */
export async function runCluster3(options: BenchOptions, loadAverage1m: number): Promise<number> {
  const tabs = options.steps[options.steps.length - 1] as number;
  const nodeCount = options.nodes;
  const perNode = Math.ceil(tabs / nodeCount);
  if (perNode > options.maxSocketsPerWorker) {
    process.stderr.write(`${perNode} tabs per node: more than ${options.maxSocketsPerWorker} sockets in one tracker worker; add --nodes\n`);
    return 2;
  }
  const choice = options.hubCommand !== undefined ? { command: options.hubCommand, note: 'from --hub-cmd' } : chooseDefaultHubCommand(REPO_ROOT, options.build);
  const outDir = path.resolve(REPO_ROOT, options.outDir);
  fs.mkdirSync(outDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const redis = await RedisProcess.start();
  const nodes: Node[] = [];
  let workers: WorkerSet | undefined;
  try {
    for (let i = 0; i < nodeCount; i++) {
      const port = await findFreePort();
      const name = `hub-${String.fromCharCode(97 + i)}`;
      const hub = ManagedHub.start({
        command: choice.command,
        cwd: REPO_ROOT,
        port,
        apiKey: options.apiKey,
        jwtSecret: options.jwtSecret,
        openFileLimit: options.openFileLimit,
        logFile: path.join(outDir, `cluster3-${stamp}.${name}.log`),
        env: { REDIS_URL: redis.url, NODE_ID: name, ...options.hubEnv },
      });
      nodes.push({ name, url: `http://127.0.0.1:${port}`, hub, startedAtEpochMs: Date.now() });
    }
    for (const node of nodes) await waitReady(node.url, 60_000, () => node.hub.exit === undefined);
    const first = nodes[0] as Node;
    const second = nodes[Math.min(1, nodes.length - 1)] as Node;
    const last = nodes[nodes.length - 1] as Node;
    const targets: HubTarget[] = nodes.map((node) => ({ url: node.url, apiKey: options.apiKey, ...(node.hub.pid !== undefined ? { pid: node.hub.pid } : {}) }));
    const errors = new ErrorCounts();
    workers = await startWorkerSet(
      nodeCount,
      options.restWorkers,
      workerInit(options, first.url, 30 * 60_000),
      (reported: ErrorCountsJson) => errors.merge(reported),
    );
    const set = workers;
    await Promise.all(set.trackers.map((worker, i) => worker.request('retarget', { url: (nodes[i] as Node).url }, 10_000)));
    await set.dashboards.request('retarget', { url: last.url }, 10_000);
    await set.relay.request('retarget', { url: first.url }, 10_000);
    const conditions = {
      scenario: 'cluster3',
      nodes: nodeCount,
      tabs,
      tabsPerNode: perNode,
      sessions: sessionCountForTabs(tabs),
      projects: options.projects,
      hub: choice.command,
      hubEnv: options.hubEnv,
      generator: options.generator,
      redis: redis.url,
      restRounds: options.restRounds,
      diffRates: options.diffRates,
      relay: options.skip.has('relay') ? null : { pairs: options.relayPairs, bytes: options.relayBytes, pauseMs: options.relayPauseMs, seconds: options.relayDurationMs / 1000 },
      cpus: os.cpus().length,
      loadAverage1m,
      node: process.version,
    };
    log(`cluster3: conditions ${JSON.stringify(conditions)}`);

    log(`connecting ${tabs} tabs, ${perNode} per node`);
    const connectStarted = performance.now();
    const connectPhase = await observed(nodes, redis, set.all, set.trackers, () =>
      connectTrackers(set, 0, tabs, { concurrencyPerWorker: options.connectConcurrency, startBatch: options.startBatch, connectTimeoutMs: options.connectTimeoutMs, deadlineMs: options.connectDeadlineMs }),
    );
    const connect = connectPhase.value;
    log(`  ${connect.connected} connected (${connect.failed} failed) in ${(connect.elapsedMs / 1000).toFixed(1)} s`);
    const expected = sessionCountForTabs(connect.liveTabs);
    const converged = await Promise.all(
      targets.map((target) => pollHub(target, connectStarted, 500, connect.elapsedMs + 120_000, (m) => m.hub.hub_live_sessions === expected, Promise.resolve(), polledMetrics(options))),
    );
    const convergeMs = converged.map((poll) => poll.doneAtMs);
    log(`  every node lists ${expected} sessions after ${convergeMs.map((ms) => fmt(ms === null ? null : ms / 1000)).join(' / ')} s (from the first connect)`);
    await sleep(options.settleMs);

    // REST on every node in turn; round r starts at node r, so no node is always measured first.
    const restOptions = { durationMs: options.restDurationMs, concurrency: options.restConcurrency, requestTimeoutMs: 10_000, gzip: options.restGzip, searchLimit: options.searchLimit };
    const rest: Array<{ round: number; node: string; result: Awaited<ReturnType<typeof runRest>>; hubs: HubWindow[]; redis: RedisWindow; restWorkersCpuCores: number | null; box: BoxWindow }> = [];
    if (!options.skip.has('rest')) {
      for (let round = 0; round < options.restRounds; round++) {
        for (let k = 0; k < nodeCount; k++) {
          const node = nodes[(round + k) % nodeCount] as Node;
          await Promise.all(set.rest.map((worker) => worker.request('retarget', { url: node.url }, 10_000)));
          await runRest(set, 'search', options.restConcurrency, connect.liveTabs, { ...restOptions, durationMs: 1000 });
          const phase = await observed(nodes, redis, set.all, set.rest, () => runRest(set, 'search', options.restConcurrency, connect.liveTabs, restOptions));
          rest.push({ round: round + 1, node: node.name, result: phase.value, hubs: phase.hubs, redis: phase.redis, restWorkersCpuCores: phase.workerCpuCores, box: phase.box });
          log(
            `  REST round ${round + 1} on ${node.name}: ${fmt(phase.value.requestsPerSecond, 0)} req/s, p99 ${fmt(phase.value.latency.p99Ms)} ms; hub CPU ${perHub(phase.hubs, (h) => pct(h.cpuCores))}; ` +
              `REST workers ${pct(phase.workerCpuCores)}; machine busy ${fmt(phase.box.machineBusyCores, 2)} cores; workers ${JSON.stringify(Object.fromEntries(Object.entries(phase.box.workers).map(([k, v]) => [k, Math.round((v ?? Number.NaN) * 100)])))}`,
          );
        }
      }
    }

    // Cross-node freshness: dashboards on the last node, changes from tabs held by the first, and
    // a probe tab on the first whose changes REST on the last node is polled for.
    const freshness: Array<{
      rate: number;
      epochMs: { from: number; to: number };
      changesSent: number;
      changesPerSecond: number;
      diffEvents: number;
      seqGaps: number;
      diffLatency: LatencySummary;
      restFreshness: LatencySummary;
      hubs: HubWindow[];
      redis: RedisWindow;
      generatorCpuCores: number | null;
      box: BoxWindow;
    }> = [];
    let dashboards = 0;
    if (!options.skip.has('diffs')) {
      const subscribed = await set.dashboards.request('dashboards.connect', { count: options.dashboards, projectCount: options.projects, connectTimeoutMs: 10_000, ackTimeoutMs: 10_000 }, 60_000);
      dashboards = subscribed.subscribed;
      for (const rate of options.diffRates) {
        await set.dashboards.request('dashboards.measure', { sinceEpochMs: Date.now() }, 30_000);
        const tracker = set.trackers[0] as LoadWorker;
        const windowStartedAtEpochMs = Date.now();
        const phase = await observed(nodes, redis, set.all, [tracker, set.dashboards], async () => {
          const updates = tracker.request('trackers.update', { ratePerSecond: rate, durationMs: options.diffDurationMs }, options.diffDurationMs + 30_000);
          const fresh = restFreshness(first, last, options, updates, errors);
          const sent = await updates;
          await sleep(1500);
          return { sent, fresh: await fresh };
        });
        const collected = await set.dashboards.request('dashboards.collect', {}, 30_000);
        const diffLatency = mergeHistograms([collected.diffLatency]).summary();
        const entry = {
          rate,
          epochMs: { from: windowStartedAtEpochMs, to: Date.now() },
          changesSent: phase.value.sent.sent,
          changesPerSecond: phase.value.sent.sent / (phase.value.sent.elapsedMs / 1000),
          diffEvents: collected.diffEvents,
          seqGaps: collected.seqGaps,
          diffLatency,
          restFreshness: phase.value.fresh,
          hubs: phase.hubs,
          redis: phase.redis,
          generatorCpuCores: phase.workerCpuCores,
          box: phase.box,
        };
        freshness.push(entry);
        log(
          `  ${rate} changes/s: diff p50/p99/max ${latency(diffLatency)} ms, REST p50/p99/max ${latency(entry.restFreshness)} ms; ` +
            `major GCs ${perHub(phase.hubs, (h) => `${h.gc.major} (${fmt(h.gc.majorMs, 0)} ms)`)}; redis ${pct(phase.redis.cpuCores)}`,
        );
      }
      await set.dashboards.request('dashboards.close', {}, 30_000);
    }

    // Cross-node relay: the tab on the first node, its agent on the second.
    const relay: Array<{ pauseMs: number; result: RelayRunResult; roundTrip: LatencySummary; pingsPerSecond: number; hubs: HubWindow[]; redis: RedisWindow; box: BoxWindow }> = [];
    let relayPairs = 0;
    if (!options.skip.has('relay')) {
      const connected = await set.relay.request('relay.connect', { pairs: options.relayPairs, sessionOffset: 0, connectTimeoutMs: 10_000, agentUrl: second.url }, 60_000);
      relayPairs = connected.connectedPairs;
      try {
        for (const pauseMs of [...new Set([options.relayPauseMs, 0])]) {
          const phase = await observed(nodes, redis, set.all, [set.relay], () =>
            set.relay.request('relay.run', { durationMs: options.relayDurationMs, pauseMs, replyTimeoutMs: 5000, payloadBytes: options.relayBytes }, options.relayDurationMs + 40_000),
          );
          const roundTrip = mergeHistograms([phase.value.roundTrip]).summary();
          const pingsPerSecond = phase.value.sent / (phase.value.elapsedMs / 1000);
          relay.push({ pauseMs, result: phase.value, roundTrip, pingsPerSecond, hubs: phase.hubs, redis: phase.redis, box: phase.box });
          log(`  relay ${first.name} tab <-> ${second.name} agent, pause ${pauseMs} ms: ${fmt(pingsPerSecond, 0)} pings/s, round trip ${latency(roundTrip)} ms; redis ${pct(phase.redis.cpuCores)}`);
        }
      } finally {
        await set.relay.request('relay.close', {}, 30_000);
      }
    }

    const result = {
      conditions,
      connect: { ...connect, convergeMs, hubs: connectPhase.hubs, redis: connectPhase.redis, box: connectPhase.box },
      rest,
      freshness: { dashboards, windows: freshness },
      relay: { pairs: relayPairs, runs: relay },
      redis: {
        usedMemoryBytes: redis.usedMemoryBytes() ?? null,
        rssBytes: (redis.pid !== undefined ? readProcessStats(redis.pid)?.rssBytes : undefined) ?? null,
        opsStreamBytes: memoryUsage(redis, OPS_STREAM),
      },
      hubs: nodes.map((node) => ({ name: node.name, startedAtEpochMs: node.startedAtEpochMs, rssBytes: (node.hub.pid !== undefined ? readProcessStats(node.hub.pid)?.rssBytes : undefined) ?? null })),
      errors: errors.toJson(),
    };
    const errorTotal = Object.values(result.errors).reduce((sum, n) => sum + n, 0) + rest.reduce((sum, r) => sum + r.result.failed, 0);
    log(`\n== cluster3: ${nodeCount} nodes, ${tabs} tabs (${expected} sessions), one redis-server ==`);
    const names = nodes.map((node) => node.name).join(' / ');
    log(
      renderTable(
        ['figure', 'value', 'target'],
        [
          ...rest.map((r) => [
            `REST search round ${r.round} on ${r.node}, ${options.restConcurrency} clients: req/s; p99 ms; hub CPU ${names}; REST workers; machine busy (cores)`,
            `${fmt(r.result.requestsPerSecond, 0)}; ${fmt(r.result.latency.p99Ms)}; ${perHub(r.hubs, (h) => pct(h.cpuCores))}; ${pct(r.restWorkersCpuCores)}; ${fmt(r.box.machineBusyCores, 2)}`,
            '>= 3000',
          ]),
          ...freshness.flatMap((f) => [
            [`${f.rate}/s: diff ${first.name} -> ${dashboards} dashboards on ${last.name}, p50 / p99 / max ms`, latency(f.diffLatency), 'p99 <= 100'],
            [`${f.rate}/s: REST ${first.name} -> ${last.name} (probe tab), p50 / p99 / max ms (n)`, `${latency(f.restFreshness)} (${f.restFreshness.count})`, 'p99 <= 100'],
            [`${f.rate}/s: changes/s sent / diff events / seq gaps`, `${fmt(f.changesPerSecond, 0)} / ${f.diffEvents} / ${f.seqGaps}`, `${f.rate} / - / 0`],
            [`${f.rate}/s: replication lag p99 (bucket bound, ms) ${names}`, perHub(f.hubs, (h) => fmt(h.replication.p99UpToMs, 0)), '-'],
            [
              `${f.rate}/s: where the time goes, mean (p99 bucket bound) ms: write on ${first.name}; replication lag / diff in the hub on ${last.name}`,
              `${stage(f.hubs[0]?.write)}; ${stage(replicationStage(f.hubs.at(-1)))} / ${stage(f.hubs.at(-1)?.diffHub)}`,
              '-',
            ],
            [`${f.rate}/s: hub CPU ${names}; generator`, `${perHub(f.hubs, (h) => pct(h.cpuCores))}; ${pct(f.generatorCpuCores)}`, '-'],
            [`${f.rate}/s: GC (major n x ms + minor ms, pauses > 10 / 100 ms) / loop max ms, ${names}`, `${perHub(f.hubs, gcOf)}; ${perHub(f.hubs, (h) => fmt(h.loopMaxMs, 0))}`, '-'],
            [`${f.rate}/s: redis CPU / ops entries/s / relay entries/s`, `${pct(f.redis.cpuCores)} / ${fmt(f.redis.opsEntriesPerSecond, 0)} / ${fmt(f.redis.relayEntriesPerSecond, 0)}`, '-'],
          ]),
          ...relay.flatMap((r) => [
            [`relay ${first.name} tab <-> ${second.name} agent, ${relayPairs} pairs, ${options.relayBytes} B, pause ${r.pauseMs} ms: pings/s; round trip p50 / p99 / max ms`, `${fmt(r.pingsPerSecond, 0)}; ${latency(r.roundTrip)}`, '-'],
            [`  pause ${r.pauseMs} ms: redis CPU / relay entries/s; hub CPU ${names}`, `${pct(r.redis.cpuCores)} / ${fmt(r.redis.relayEntriesPerSecond, 0)}; ${perHub(r.hubs, (h) => pct(h.cpuCores))}`, '-'],
          ]),
          ['every node exact after (s from the first connect)', convergeMs.map((ms) => fmt(ms === null ? null : ms / 1000)).join(' / '), '-'],
          ['redis CPU (of one core) during the connects', pct(connectPhase.redis.cpuCores), '-'],
          [`redis used_memory / RSS / ${OPS_STREAM} (MEMORY USAGE) (MiB) at the end`, `${mib(result.redis.usedMemoryBytes)} / ${mib(result.redis.rssBytes)} / ${mib(result.redis.opsStreamBytes)}`, '-'],
          [`hub RSS (MiB) ${names}`, result.hubs.map((h) => mib(h.rssBytes)).join(' / '), '-'],
          ['errors', String(errorTotal), '0'],
        ],
      ),
    );
    log(`errors: ${JSON.stringify(result.errors)}`);
    log(`results: ${writeResult(options, result)}`);
    return 0;
  } finally {
    // A hub closing 15,000 sockets takes more than a few seconds; killed before it exits, it writes
    // no --cpu-prof profile.
    await Promise.all([...(workers?.all ?? []).map((worker) => worker.stop(3000)), ...nodes.map((node) => node.hub.stop(30_000))]);
    redis.stop();
  }
}
