/**
 * The bench's phases as reusable functions over a running hub and a set of workers. bench.ts
 * strings them into the standard scenario; a multi-node scenario can reuse them per node.
 *
 * Every phase is observed from the hub's side (`PhaseRecorder.observe`): /metrics before and
 * after gives the hub's CPU time and event-loop delay over the phase, and the workers' own CPU
 * use shows whether the generator, rather than the hub, was the limit.
 */
import { sleep } from './async';
import { type BoxCpuTicks, gcBetween, measureHeap, readBoxCpu, readMainThreadSched, readProcessStats, scrapeMetrics, stallsBetween, type GcResult, type GcWindow, type HubMetrics, type StallWindow } from './hub';
import { sessionCountForTabs } from './population';
import type { RelayRunResult } from './relay';
import { REST_OPERATIONS, type RestOperation, type RestRunResult } from './rest';
import { ErrorCounts, mergeHistograms, type ErrorCountsJson, type LatencySummary } from './stats';
import type { LoadWorker, WorkerSet } from './workers';

export interface HubTarget {
  url: string;
  apiKey: string;
  /** Pid of a hub process the bench started (for /proc fallbacks); undefined for --url. */
  pid?: number;
}

/**
 * The phase's longest event-loop stall: the hub's own gauge where the server has it, since
 * prom-client's max misses a stall that a scrape ends (src/ops/loopStalls.ts); prom-client's
 * otherwise.
 */
export function phaseStallMs(phase: Pick<PhaseObservation, 'loopStallMaxMs' | 'eventLoopMaxMs'>): number | null {
  return phase.loopStallMaxMs ?? phase.eventLoopMaxMs;
}

export interface PhaseObservation {
  phase: string;
  durationMs: number;
  /** Hub CPU seconds used during the phase (from /metrics, else /proc). */
  hubCpuSeconds: number | null;
  /** Hub CPU use as a fraction of one core. */
  hubCpuCores: number | null;
  /** Raw prom-client p99; includes its sampling interval (10 ms by default), see `eventLoopMinMs`. */
  eventLoopP99Ms: number | null;
  eventLoopMinMs: number | null;
  /** Longest single event-loop stall seen during the phase by prom-client's monitor: a p99 hides one long stall. */
  eventLoopMaxMs: number | null;
  /** The same by the hub's own stall gauge (null on a server without it): see `phaseStallMs`. */
  loopStallMaxMs: number | null;
  /**
   * The phase's stalls by the hub's histogram (`hub_event_loop_stalls_seconds`, null on a server
   * without it): counted by the hub as each ends, so unlike the two maxima above it does not depend
   * on when or how often anyone scraped during the phase.
   */
  loopStalls: StallWindow | null;
  /** CPU seconds all load workers used together during the phase (the orchestrator not included). */
  generatorCpuSeconds: number;
  /**
   * CPU seconds of each generator process during the phase, by worker name (`trackers-1`, `rest-1`,
   * `relay`, `dashboards`, …) and `orchestrator` (this process: /metrics polls, /health probes, IPC).
   */
  generatorCpuByProcess: Record<string, number>;
  /** The kernel's part of `generatorCpuByProcess` (system time), by process. */
  generatorSystemCpuByProcess: Record<string, number>;
  /**
   * How long the main thread of the hub (`hub`, when the bench started it) and of each generator
   * process waited in the kernel's run queue for a CPU during the phase (ms, /proc/<pid>/schedstat).
   * On this 2-core box it is most of a relay round trip's tail, on either side (docs/performance.md,
   * "Fifth pass", relay).
   */
  mainThreadWaitMsByProcess: Record<string, number>;
  /**
   * Where the hub's main thread was during the phase, as shares of its duration: on a CPU, runnable
   * and waiting for one, and the rest (sleeping in epoll: nothing to do). With the box's idle share,
   * it tells a hub-bound phase (on a CPU throughout) from a box-bound one (waiting, box not idle)
   * and from a pipeline bubble (sleeping while work is pending). Null without /proc.
   */
  hubMainThread: ThreadTimeSplit | null;
  /** Share of the machine's CPU time (all cores) that was idle during the phase; null without /proc/stat. */
  boxIdleShare: number | null;
  /** Change of every `hub_*` metric over the phase (only those that changed). */
  hubMetricChanges: Record<string, number>;
  /** The hub's GC during the phase (null when either scrape failed): one mark-compact can make a run's tail. */
  hubGc: GcWindow | null;
  errors: ErrorCountsJson;
}

/** Shares of a window a thread spent on a CPU, waiting for one, and neither (sleeping). */
export interface ThreadTimeSplit {
  onCpu: number;
  waiting: number;
  sleeping: number;
}

/** Splits a window of `durationMs` by a thread's run and wait time in it (ms); sleeping is the rest, never below 0. */
export function threadTimeSplit(durationMs: number, runMs: number, waitMs: number): ThreadTimeSplit | null {
  if (!(durationMs > 0) || !Number.isFinite(runMs) || !Number.isFinite(waitMs)) return null;
  const onCpu = runMs / durationMs;
  const waiting = waitMs / durationMs;
  return { onCpu, waiting, sleeping: Math.max(0, 1 - onCpu - waiting) };
}

/** The idle share of the machine's CPU between two readings of /proc/stat, or null. */
export function boxIdleShare(before: BoxCpuTicks | undefined, after: BoxCpuTicks | undefined): number | null {
  if (before === undefined || after === undefined) return null;
  const total = after.totalTicks - before.totalTicks;
  return total > 0 ? (after.idleTicks - before.idleTicks) / total : null;
}

/** Observes phases and routes the errors workers report to the phase they belong to. */
export class PhaseRecorder {
  readonly observations: PhaseObservation[] = [];
  private phaseErrors = new ErrorCounts();

  constructor(
    private readonly hub: HubTarget,
    private readonly workers: () => readonly LoadWorker[],
  ) {}

  /** Pass to the workers: where their error counts go. */
  readonly onWorkerErrors = (errors: ErrorCountsJson): void => this.phaseErrors.merge(errors);

  async observe<T>(phase: string, run: () => Promise<T>): Promise<T> {
    const before = await this.sample();
    this.phaseErrors = new ErrorCounts();
    const startedAt = performance.now();
    try {
      return await run();
    } finally {
      const durationMs = performance.now() - startedAt;
      const after = await this.sample();
      this.observations.push(observation(phase, durationMs, before, after, this.phaseErrors.drain()));
    }
  }

  private async sample(): Promise<Sample> {
    const [metrics, usages] = await Promise.all([
      scrapeMetrics(this.hub.url, this.hub.apiKey),
      Promise.all(this.workers().map((worker) => worker.request('usage', {}, 10_000).catch(() => undefined))),
    ]);
    const proc = this.hub.pid !== undefined ? readProcessStats(this.hub.pid) : undefined;
    const generatorCpuSeconds = usages.reduce((sum, usage) => sum + (usage?.cpuSeconds ?? 0), 0);
    const own = process.cpuUsage();
    const byProcess: Record<string, number> = { orchestrator: (own.user + own.system) / 1e6 };
    const systemByProcess: Record<string, number> = { orchestrator: own.system / 1e6 };
    this.workers().forEach((worker, i) => {
      const usage = usages[i];
      if (usage === undefined) return;
      byProcess[worker.name] = usage.cpuSeconds;
      if (usage.systemCpuSeconds !== undefined) systemByProcess[worker.name] = usage.systemCpuSeconds;
    });
    const waitMsByProcess: Record<string, number> = {};
    let hubMainRunMs: number | undefined;
    const pids: Array<[string, number | undefined]> = [['hub', this.hub.pid], ['orchestrator', process.pid], ...this.workers().map((worker): [string, number | undefined] => [worker.name, worker.pid])];
    for (const [name, pid] of pids) {
      const sched = pid === undefined ? undefined : readMainThreadSched(pid);
      if (sched !== undefined) waitMsByProcess[name] = sched.waitMs;
      if (sched !== undefined && name === 'hub') hubMainRunMs = sched.runMs;
    }
    return { metrics, procCpuSeconds: proc?.cpuSeconds, generatorCpuSeconds, byProcess, systemByProcess, waitMsByProcess, hubMainRunMs, box: readBoxCpu(), at: performance.now() };
  }
}

interface Sample {
  metrics: HubMetrics | undefined;
  procCpuSeconds: number | undefined;
  generatorCpuSeconds: number;
  /** Cumulative CPU seconds of each generator process, by name. */
  byProcess: Record<string, number>;
  systemByProcess: Record<string, number>;
  /** Cumulative run-queue wait of each process's main thread (ms), by name (`hub` included). */
  waitMsByProcess: Record<string, number>;
  /** Cumulative run time of the hub's main thread (ms), when the bench started the hub. */
  hubMainRunMs: number | undefined;
  box: BoxCpuTicks | undefined;
  /** When the sample was taken (performance.now()): the /proc figures cover the time between samples. */
  at: number;
}

/** What each process's cumulative figure grew by between two samples (a process missing from either is left out). */
function cpuByProcess(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const used: Record<string, number> = {};
  for (const [name, seconds] of Object.entries(after)) {
    const start = before[name];
    if (start !== undefined) used[name] = seconds - start;
  }
  return used;
}

function observation(phase: string, durationMs: number, before: Sample, after: Sample, errors: ErrorCountsJson): PhaseObservation {
  let hubCpuSeconds: number | null = null;
  if (before.metrics?.cpuSeconds !== undefined && after.metrics?.cpuSeconds !== undefined) {
    hubCpuSeconds = after.metrics.cpuSeconds - before.metrics.cpuSeconds;
  } else if (before.procCpuSeconds !== undefined && after.procCpuSeconds !== undefined) {
    hubCpuSeconds = after.procCpuSeconds - before.procCpuSeconds;
  }
  const hubMetricChanges: Record<string, number> = {};
  for (const [key, value] of Object.entries(after.metrics?.hub ?? {})) {
    const change = value - (before.metrics?.hub[key] ?? 0);
    if (change !== 0) hubMetricChanges[key] = change;
  }
  const toMs = (seconds: number | undefined): number | null => (seconds === undefined ? null : seconds * 1000);
  return {
    phase,
    durationMs,
    hubCpuSeconds,
    hubCpuCores: hubCpuSeconds === null ? null : hubCpuSeconds / (durationMs / 1000),
    eventLoopP99Ms: toMs(after.metrics?.eventLoopP99Seconds),
    eventLoopMinMs: toMs(after.metrics?.eventLoopMinSeconds),
    eventLoopMaxMs: toMs(after.metrics?.eventLoopMaxSeconds),
    loopStallMaxMs: toMs(after.metrics?.loopStallMaxSeconds),
    loopStalls: before.metrics && after.metrics ? stallsBetween(before.metrics.stallBuckets, after.metrics.stallBuckets) : null,
    generatorCpuSeconds: after.generatorCpuSeconds - before.generatorCpuSeconds,
    generatorCpuByProcess: cpuByProcess(before.byProcess, after.byProcess),
    generatorSystemCpuByProcess: cpuByProcess(before.systemByProcess, after.systemByProcess),
    mainThreadWaitMsByProcess: cpuByProcess(before.waitMsByProcess, after.waitMsByProcess),
    hubMainThread: hubSplit(before, after),
    boxIdleShare: boxIdleShare(before.box, after.box),
    hubMetricChanges,
    hubGc: before.metrics && after.metrics ? gcBetween(before.metrics.gc, after.metrics.gc) : null,
    errors,
  };
}

/** The hub main thread's split over the time between two samples (which brackets the phase and its scrapes). */
function hubSplit(before: Sample, after: Sample): ThreadTimeSplit | null {
  const waitBefore = before.waitMsByProcess.hub;
  const waitAfter = after.waitMsByProcess.hub;
  if (before.hubMainRunMs === undefined || after.hubMainRunMs === undefined || waitBefore === undefined || waitAfter === undefined) return null;
  return threadTimeSplit(after.at - before.at, after.hubMainRunMs - before.hubMainRunMs, waitAfter - waitBefore);
}

const REQUEST_SLACK_MS = 30_000;

// --- connect ------------------------------------------------------------------------------

export interface ConnectOptions {
  concurrencyPerWorker: number;
  /** Handshakes each worker starts per turn of its loop (0: all at once). */
  startBatch: number;
  connectTimeoutMs: number;
  deadlineMs: number;
}

export interface ConnectPhaseResult {
  fromTab: number;
  toTab: number;
  connected: number;
  failed: number;
  skipped: number;
  elapsedMs: number;
  connectsPerSecond: number;
  connectLatency: LatencySummary;
  liveTabs: number;
}

/** Connects tabs [fromTab, toTab) spread over the tracker workers (round-robin by index). */
export async function connectTrackers(workers: WorkerSet, fromTab: number, toTab: number, options: ConnectOptions): Promise<ConnectPhaseResult> {
  const startedAt = performance.now();
  const results = await Promise.all(
    workers.trackers.map((worker, offset) =>
      worker.request(
        'trackers.connect',
        {
          fromTab,
          toTab,
          stride: workers.trackers.length,
          offset,
          concurrency: options.concurrencyPerWorker,
          startBatch: options.startBatch,
          connectTimeoutMs: options.connectTimeoutMs,
          deadlineMs: options.deadlineMs,
        },
        options.deadlineMs + options.connectTimeoutMs + REQUEST_SLACK_MS,
      ),
    ),
  );
  const elapsedMs = performance.now() - startedAt;
  const connected = sum(results.map((result) => result.connected));
  return {
    fromTab,
    toTab,
    connected,
    failed: sum(results.map((result) => result.failed)),
    skipped: sum(results.map((result) => result.skippedByDeadline)),
    elapsedMs,
    connectsPerSecond: connected / (elapsedMs / 1000),
    connectLatency: mergeHistograms(results.map((result) => result.connectLatency)).summary(),
    liveTabs: sum(results.map((result) => result.liveTabs)),
  };
}

export async function closeTrackers(workers: WorkerSet): Promise<number> {
  const results = await Promise.all(workers.trackers.map((worker) => worker.request('trackers.close', {}, REQUEST_SLACK_MS)));
  return sum(results.map((result) => result.closed));
}

// --- memory -------------------------------------------------------------------------------

export interface MemoryResult {
  liveTabs: number;
  liveSessions: number;
  baseline: GcResult | null;
  loaded: GcResult | null;
  heapBytesPerSession: number | null;
  rssBytesPerSession: number | null;
  heapBytesPerTab: number | null;
  rssBytesPerTab: number | null;
}

export function measureHubHeap(hub: HubTarget): Promise<GcResult | undefined> {
  return measureHeap(hub.url, hub.apiKey, hub.pid);
}

export function memoryPerSession(baseline: GcResult | undefined, loaded: GcResult | undefined, liveTabs: number): MemoryResult {
  const liveSessions = sessionCountForTabs(liveTabs);
  const per = (field: 'heapUsedBytes' | 'rssBytes', count: number): number | null => {
    if (baseline === undefined || loaded === undefined || count === 0) return null;
    const value = (loaded[field] - baseline[field]) / count;
    return Number.isFinite(value) ? value : null;
  };
  return {
    liveTabs,
    liveSessions,
    baseline: baseline ?? null,
    loaded: loaded ?? null,
    heapBytesPerSession: per('heapUsedBytes', liveSessions),
    rssBytesPerSession: per('rssBytes', liveSessions),
    heapBytesPerTab: per('heapUsedBytes', liveTabs),
    rssBytesPerTab: per('rssBytes', liveTabs),
  };
}

// --- REST ---------------------------------------------------------------------------------

export interface RestOptions {
  durationMs: number;
  concurrency: number;
  requestTimeoutMs: number;
  gzip: boolean;
  searchLimit: number;
}

export interface RestPhaseResult {
  operation: RestOperation;
  clients: number;
  requests: number;
  ok: number;
  failed: number;
  requestsPerSecond: number;
  meanResponseBytes: number | null;
  latency: LatencySummary;
}

/** One phase's figures from the results of every REST worker that took part in it. */
export function summarizeRest(operation: RestOperation, clients: number, results: RestRunResult[]): RestPhaseResult {
  const sum = (pick: (r: RestRunResult) => number): number => results.reduce((total, r) => total + pick(r), 0);
  const requests = sum((r) => r.requests);
  const ok = sum((r) => r.ok);
  const elapsedMs = Math.max(1, ...results.map((r) => r.elapsedMs));
  return {
    operation,
    clients,
    requests,
    ok,
    failed: sum((r) => r.failed),
    requestsPerSecond: ok / (elapsedMs / 1000),
    meanResponseBytes: requests > 0 ? sum((r) => r.responseBytes) / requests : null,
    latency: mergeHistograms(results.map((r) => r.latency)).summary(),
  };
}

export async function runRest(
  workers: WorkerSet,
  operation: RestOperation,
  clients: number,
  liveTabs: number,
  options: RestOptions,
): Promise<RestPhaseResult> {
  // Clients are dealt out over the REST worker processes (one client: one process).
  const share = (i: number): number => Math.floor(clients / workers.rest.length) + (i < clients % workers.rest.length ? 1 : 0);
  const results = await Promise.all(
    workers.rest.flatMap((worker, i) =>
      share(i) > 0
        ? [
            worker.request(
              'rest.run',
              { operation, concurrency: share(i), durationMs: options.durationMs, liveTabs, requestTimeoutMs: options.requestTimeoutMs, gzip: options.gzip, searchLimit: options.searchLimit },
              options.durationMs + options.requestTimeoutMs + REQUEST_SLACK_MS,
            ),
          ]
        : [],
    ),
  );
  return summarizeRest(operation, clients, results);
}

/** Each operation with one client, then with `options.concurrency` clients. */
export async function runRestMatrix(
  recorder: PhaseRecorder,
  workers: WorkerSet,
  liveTabs: number,
  options: RestOptions,
): Promise<RestPhaseResult[]> {
  const results: RestPhaseResult[] = [];
  // A freshly started hub runs its REST path unoptimised at first: one unmeasured second of every
  // operation lets the JIT settle, so the 1k step is not penalised against the later ones.
  const warmUp = { ...options, durationMs: Math.min(1000, options.durationMs) };
  for (const operation of REST_OPERATIONS) await runRest(workers, operation, options.concurrency, liveTabs, warmUp);
  for (const operation of REST_OPERATIONS) {
    for (const clients of [1, options.concurrency]) {
      results.push(await recorder.observe(`rest ${operation} x${clients}`, () => runRest(workers, operation, clients, liveTabs, options)));
    }
  }
  return results;
}

// --- relay --------------------------------------------------------------------------------

export interface RelayOptions {
  pairs: number;
  durationMs: number;
  pauseMs: number;
  connectTimeoutMs: number;
  /** Offset of the relay sessions, so that a step never reuses a previous step's sessions. */
  sessionOffset: number;
  rest: RestOptions;
}

export interface RelayStats {
  sent: number;
  answered: number;
  timedOut: number;
  roundTrip: LatencySummary;
}

export interface RelayPhaseResult {
  pairs: number;
  connectedPairs: number;
  idle: RelayStats | null;
  underRestLoad: (RelayStats & { rest: RestPhaseResult }) | null;
}

export async function runRelay(recorder: PhaseRecorder, workers: WorkerSet, liveTabs: number, options: RelayOptions): Promise<RelayPhaseResult> {
  const connect = await recorder.observe('relay connect', () =>
    workers.relay.request(
      'relay.connect',
      { pairs: options.pairs, sessionOffset: options.sessionOffset, connectTimeoutMs: options.connectTimeoutMs },
      options.connectTimeoutMs * 3 + REQUEST_SLACK_MS,
    ),
  );
  const result: RelayPhaseResult = { pairs: options.pairs, connectedPairs: connect.connectedPairs, idle: null, underRestLoad: null };
  try {
    if (connect.connectedPairs === 0) return result;
    const relayArgs = { durationMs: options.durationMs, pauseMs: options.pauseMs, replyTimeoutMs: 5000 };
    const relayTimeout = options.durationMs + relayArgs.replyTimeoutMs + REQUEST_SLACK_MS;
    result.idle = await recorder.observe('relay idle', async () =>
      relayStats(await workers.relay.request('relay.run', relayArgs, relayTimeout)),
    );
    result.underRestLoad = await recorder.observe(`relay + ${options.rest.concurrency} REST search clients`, async () => {
      const [relay, rest] = await Promise.all([
        workers.relay.request('relay.run', relayArgs, relayTimeout),
        runRest(workers, 'search', options.rest.concurrency, liveTabs, { ...options.rest, durationMs: options.durationMs }),
      ]);
      return { ...relayStats(relay), rest };
    });
    return result;
  } finally {
    await workers.relay.request('relay.close', {}, REQUEST_SLACK_MS);
  }
}

function relayStats(result: RelayRunResult): RelayStats {
  return { sent: result.sent, answered: result.answered, timedOut: result.timedOut, roundTrip: mergeHistograms([result.roundTrip]).summary() };
}

// --- dashboards and diffs -----------------------------------------------------------------

export interface DiffOptions {
  dashboards: number;
  projectCount: number;
  changesPerSecond: number;
  durationMs: number;
  connectTimeoutMs: number;
  ackTimeoutMs: number;
  /** Wait after the last change for diffs still in flight (hubs may coalesce diffs briefly). */
  drainMs: number;
}

export interface DiffPhaseResult {
  dashboards: number;
  connected: number;
  subscribed: number;
  subscriptionsByVariant: Record<string, number>;
  subscribeLatency: LatencySummary;
  snapshotSessions: number;
  changesSent: number;
  changesPerSecond: number;
  diffEvents: number;
  addedSessions: number;
  updatedSessions: number;
  removedSessions: number;
  seqGaps: number;
  diffLatency: LatencySummary;
}

/**
 * Dashboards subscribe, then trackers change at the given rate while dashboards time the diffs.
 * `alongside` (the mixed scenario's other loads) runs in parallel with the changes, in the same
 * observed phase; its result is returned next to the diff figures.
 */
export async function runDiffs(recorder: PhaseRecorder, workers: WorkerSet, options: DiffOptions): Promise<DiffPhaseResult>;
export async function runDiffs<T>(recorder: PhaseRecorder, workers: WorkerSet, options: DiffOptions, alongside: () => Promise<T>, phaseName?: string): Promise<DiffPhaseResult & { alongside: T }>;
export async function runDiffs<T>(recorder: PhaseRecorder, workers: WorkerSet, options: DiffOptions, alongside?: () => Promise<T>, phaseName?: string): Promise<DiffPhaseResult & { alongside?: T }> {
  const connect = await recorder.observe('dashboards subscribe', () =>
    workers.dashboards.request(
      'dashboards.connect',
      { count: options.dashboards, projectCount: options.projectCount, connectTimeoutMs: options.connectTimeoutMs, ackTimeoutMs: options.ackTimeoutMs },
      options.connectTimeoutMs + options.ackTimeoutMs + REQUEST_SLACK_MS,
    ),
  );
  try {
    const sinceEpochMs = Date.now();
    await workers.dashboards.request('dashboards.measure', { sinceEpochMs }, REQUEST_SLACK_MS);
    const { sent, elapsedMs, other } = await recorder.observe(phaseName ?? `tracker changes at ${options.changesPerSecond}/s`, async () => {
      // Each tracker worker emits a share of the rate proportional to its share of the tabs;
      // with round-robin placement that is an even split.
      const share = options.changesPerSecond / workers.trackers.length;
      const startedAt = performance.now();
      const [results, other] = await Promise.all([
        Promise.all(
          workers.trackers.map((worker) =>
            worker.request('trackers.update', { ratePerSecond: share, durationMs: options.durationMs }, options.durationMs + REQUEST_SLACK_MS),
          ),
        ),
        alongside?.(),
      ]);
      const elapsedMs = performance.now() - startedAt;
      await sleep(options.drainMs);
      return { sent: sum(results.map((result) => result.sent)), elapsedMs, other };
    });
    const collected = await workers.dashboards.request('dashboards.collect', {}, REQUEST_SLACK_MS);
    return {
      dashboards: options.dashboards,
      connected: connect.connected,
      subscribed: connect.subscribed,
      subscriptionsByVariant: connect.variants,
      subscribeLatency: mergeHistograms([connect.subscribeLatency]).summary(),
      snapshotSessions: connect.snapshotSessions,
      changesSent: sent,
      changesPerSecond: sent / (elapsedMs / 1000),
      diffEvents: collected.diffEvents,
      addedSessions: collected.addedSessions,
      updatedSessions: collected.updatedSessions,
      removedSessions: collected.removedSessions,
      seqGaps: collected.seqGaps,
      diffLatency: mergeHistograms([collected.diffLatency]).summary(),
      ...(alongside !== undefined ? { alongside: other as T } : {}),
    };
  } finally {
    await workers.dashboards.request('dashboards.close', {}, REQUEST_SLACK_MS);
  }
}

function sum(values: readonly number[]): number {
  return values.reduce((total, value) => total + value, 0);
}
