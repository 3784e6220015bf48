/**
 * The bench's scenarios beyond the standard steps (`npm run bench -- --scenario NAME`):
 *
 * - mixed: at N tabs, REST search clients + dashboards with tracker changes + agent<->tab relay
 *   pairs carrying padded messages, all in the same observed phase;
 * - storm: N tabs dropped abruptly (TCP destroyed, no close handshake), then all reconnect at
 *   once; the hub's /metrics is polled throughout for its session count and event-loop stalls.
 *
 * Both reuse load/lib (hub start, workers, phases, report); see load/README.md for how to read them.
 * The cluster3 scenario is in load/cluster3.ts.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { sleep } from './lib/async';
import { httpRequest } from './lib/http';
import { chooseDefaultHubCommand, describeGc, findFreePort, ManagedHub, readAutogroupNice, scrapeMetrics, waitReady, type HubMetrics, type StallWindow } from './lib/hub';
import type { BenchOptions } from './lib/options';
import { PhaseRecorder, phaseStallMs, connectTrackers, measureHubHeap, memoryPerSession, runDiffs, runRest, type HubTarget, type PhaseObservation } from './lib/phases';
import { sessionCountForTabs } from './lib/population';
import { cpuWaitLine, generatorCpuLine, renderGeneratorCpu, renderPhases, renderTable, PHASE_TABLE_NOTE } from './lib/report';
import { ErrorCounts, mergeHistograms, type ErrorCountsJson, type LatencySummary } from './lib/stats';
import { relayAutogroupNice, startWorkerSet, workerInit, type WorkerSet } from './lib/workers';

const REPO_ROOT = path.resolve(__dirname, '..');
const log = (message: string): void => {
  process.stdout.write(`${message}\n`);
};

interface Harness {
  hub: HubTarget;
  managed: ManagedHub | undefined;
  workers: WorkerSet;
  recorder: PhaseRecorder;
  errors: ErrorCounts;
  conditions: Record<string, unknown>;
  close(): Promise<void>;
}

/**
 * Hub (started here unless --url) and workers, ready for `tabs` tracker tabs. `loadAverage1m` is
 * the box's, taken by the caller before it started anything (build, hub, workers).
 */
async function startHarness(options: BenchOptions, tabs: number, loadAverage1m: number): Promise<Harness> {
  const trackerWorkers = options.trackerWorkers ?? Math.max(1, Math.ceil(tabs / 10_000));
  let managed: ManagedHub | undefined;
  let url = options.url;
  let command: string | null = null;
  if (url === undefined) {
    const choice = options.hubCommand !== undefined ? { command: options.hubCommand, note: 'from --hub-cmd' } : chooseDefaultHubCommand(REPO_ROOT, options.build);
    command = choice.command;
    url = `http://127.0.0.1:${await findFreePort()}`;
    const outDir = path.resolve(REPO_ROOT, options.outDir);
    fs.mkdirSync(outDir, { recursive: true });
    managed = ManagedHub.start({
      command: choice.command,
      cwd: REPO_ROOT,
      port: Number(new URL(url).port),
      apiKey: options.apiKey,
      jwtSecret: options.jwtSecret,
      openFileLimit: options.openFileLimit,
      logFile: path.join(outDir, `${options.scenario}-${new Date().toISOString().replace(/[:.]/g, '-')}.hub.log`),
      env: options.hubEnv,
      ...(options.hubAutogroupNice !== undefined ? { autogroupNice: options.hubAutogroupNice } : {}),
    });
    const started = managed;
    await waitReady(url, 60_000, () => started.exit === undefined);
  } else {
    await waitReady(url, 10_000);
  }
  const hub: HubTarget = { url, apiKey: options.apiKey, ...(managed?.pid !== undefined ? { pid: managed.pid } : {}) };
  const errors = new ErrorCounts();
  let recorder: PhaseRecorder | undefined;
  const workers = await startWorkerSet(
    trackerWorkers,
    options.restWorkers,
    workerInit(options, url, 30 * 60_000),
    (reported: ErrorCountsJson) => {
      errors.merge(reported);
      recorder?.onWorkerErrors(reported);
    },
    relayAutogroupNice(options.hubAutogroupNice, os.getPriority()),
  );
  recorder = new PhaseRecorder(hub, () => workers.all);
  const generatorNice = lowerPriority(workers.all, options.generatorNice);
  const conditions = {
    scenario: options.scenario,
    tabs,
    sessions: sessionCountForTabs(tabs),
    projects: options.projects,
    trackerWorkers,
    generator: options.generator,
    startBatch: options.startBatch,
    hub: command ?? `running hub at ${url}`,
    hubEnv: options.hubEnv,
    generatorNice,
    hubAutogroupNice: managed?.pid !== undefined ? (readAutogroupNice(managed.pid) ?? null) : null,
    relayWorkerAutogroupNice: workers.relay.pid !== undefined ? (readAutogroupNice(workers.relay.pid) ?? null) : null,
    loadWorkersAutogroupNice: readAutogroupNice(process.pid) ?? null,
    pollMetrics: options.pollMetrics,
    hubOpenFileLimit: managed?.openFileLimit() ?? null,
    somaxconn: readNumber('/proc/sys/net/core/somaxconn'),
    cpus: os.cpus().length,
    loadAverage1m,
    node: process.version,
  };
  return {
    hub,
    managed,
    workers,
    recorder,
    errors,
    conditions,
    close: async () => {
      await Promise.all([...workers.all.map((worker) => worker.stop(3000)), managed?.stop(5000)]);
    },
  };
}

function readNumber(file: string): number | null {
  try {
    const value = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isFinite(value) ? value : null;
  } catch {
    return null;
  }
}

/** TcpExt ListenOverflows of the whole machine (/proc/net/netstat): SYNs dropped because an accept queue was full. */
function listenOverflows(): number | null {
  try {
    const lines = fs.readFileSync('/proc/net/netstat', 'utf8').split('\n');
    for (let i = 0; i + 1 < lines.length; i += 2) {
      const names = (lines[i] as string).split(/\s+/);
      const values = (lines[i + 1] as string).split(/\s+/);
      if (names[0] !== 'TcpExt:') continue;
      const at = names.indexOf('ListenOverflows');
      return at >= 0 ? Number(values[at]) : null;
    }
  } catch {
    // not Linux
  }
  return null;
}

/**
 * Raises each worker's nice value by `by` (a process may always lower its own priority): on a
 * box where the generator shares the cores with the hub, the hub's main thread otherwise waits for
 * a CPU in the middle of its turns, and that wait is part of every stall measured. Returns the
 * workers' nice values.
 */
function lowerPriority(workers: readonly { pid: number | undefined }[], by: number): number[] {
  const values: number[] = [];
  for (const { pid } of workers) {
    if (pid === undefined) continue;
    if (by > 0) os.setPriority(pid, Math.min(19, os.getPriority(pid) + by));
    values.push(os.getPriority(pid));
  }
  return values;
}

function sessionConnections(metrics: HubMetrics | undefined): number | undefined {
  return metrics?.hub['hub_connections{role="session"}'];
}

function refusedTotal(metrics: HubMetrics | undefined): number {
  let total = 0;
  for (const [key, value] of Object.entries(metrics?.hub ?? {})) if (key.startsWith('hub_connects_refused_total')) total += value;
  return total;
}

/**
 * GETs /health back to back (keep-alive, one in flight) until `until` settles: the longest answer
 * is the longest time the hub's loop could not serve a request. Unlike prom-client's loop-lag max,
 * it does not depend on when /metrics is scraped (a scrape resets that histogram).
 */
async function probeHealth(hub: HubTarget, until: Promise<unknown>, pauseMs = 10): Promise<{ maxMs: number; samples: number }> {
  let settled = false;
  void until.finally(() => {
    settled = true;
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  let maxMs = 0;
  let samples = 0;
  try {
    while (!settled) {
      const startedAt = performance.now();
      try {
        await httpRequest({ method: 'GET', url: `${hub.url}/health`, agent, timeoutMs: 30_000 });
        maxMs = Math.max(maxMs, performance.now() - startedAt);
        samples += 1;
      } catch {
        // a failed probe is not a latency
      }
      await sleep(pauseMs);
    }
  } finally {
    agent.destroy();
  }
  return { maxMs, samples };
}

interface PollResult {
  /** ms from the start until `done` first held, or null. */
  doneAtMs: number | null;
  /** Longest event-loop stall seen by any poll (each /metrics scrape covers the time since the previous one). */
  longestStallMs: number | null;
  /** The same from the hub's hub_event_loop_stall_max_seconds, which a scrape cannot reset away (null: a hub without it). */
  hubStallMaxMs: number | null;
  last: HubMetrics | undefined;
  polls: number;
}

/**
 * What the polls read: the session count, the refusals and the hub's stall gauge. Asking for these
 * alone spares the hub the rest of a scrape (process_open_fds lists /proc/self/fd, one entry per
 * socket) inside the storm it measures: docs/performance.md, "Fifth pass", observe. prom-client's
 * loop-lag max is left to the phase's closing scrape, which then covers the whole phase.
 */
export const POLLED_METRICS = ['hub_connections', 'hub_live_sessions', 'hub_connects_refused_total', 'hub_event_loop_stall_max_seconds'] as const;

/** The families a poll asks for under `--poll-metrics` (undefined: all of them). */
export function polledMetrics(options: Pick<BenchOptions, 'pollMetrics'>): readonly string[] | undefined {
  return options.pollMetrics === 'full' ? undefined : POLLED_METRICS;
}

/** Polls /metrics every `everyMs` until `done` holds (and `until` has settled) or `timeoutMs` passes. */
export async function pollHub(
  hub: HubTarget,
  startedAt: number,
  everyMs: number,
  timeoutMs: number,
  done: (metrics: HubMetrics) => boolean,
  until: Promise<unknown>,
  names: readonly string[] | undefined = POLLED_METRICS,
): Promise<PollResult> {
  let settled = false;
  void until.finally(() => {
    settled = true;
  });
  const result: PollResult = { doneAtMs: null, longestStallMs: null, hubStallMaxMs: null, last: undefined, polls: 0 };
  const take = (metrics: HubMetrics): void => {
    if (metrics.eventLoopMaxSeconds !== undefined) result.longestStallMs = Math.max(result.longestStallMs ?? 0, metrics.eventLoopMaxSeconds * 1000);
    const stall = metrics.hub.hub_event_loop_stall_max_seconds;
    if (stall !== undefined) result.hubStallMaxMs = Math.max(result.hubStallMaxMs ?? 0, stall * 1000);
  };
  while (performance.now() - startedAt < timeoutMs) {
    const metrics = await scrapeMetrics(hub.url, hub.apiKey, names);
    result.polls += 1;
    if (metrics !== undefined) {
      result.last = metrics;
      take(metrics);
      if (result.doneAtMs === null && done(metrics)) result.doneAtMs = performance.now() - startedAt;
    }
    if (result.doneAtMs !== null && settled) break;
    await sleep(everyMs);
  }
  // The hub's stall max covers the time since the previous scrape: one more takes the end of the phase.
  const final = await scrapeMetrics(hub.url, hub.apiKey, names);
  if (final !== undefined) take(final);
  return result;
}

function maxOrNull(...values: Array<number | null>): number | null {
  const known = values.filter((value): value is number => value !== null);
  return known.length === 0 ? null : Math.max(...known);
}

/**
 * `12 / 0, <= 100 ms`: the phase's stalls by the hub's histogram, which counts every stall as it ends
 * whoever scrapes; the maxima next to it come from resetting gauges and depend on the bench being
 * their only reader.
 */
function describeStalls(stalls: StallWindow | null, over: 'over100ms' | 'over150ms' = 'over100ms'): string {
  if (stalls === null) return '-';
  const longest = stalls.longestAtMostMs === null ? 'none' : Number.isFinite(stalls.longestAtMostMs) ? `<= ${fmt(stalls.longestAtMostMs, 0)} ms` : '> 5 s';
  return `${stalls.count} / ${stalls[over]}, ${longest}`;
}

/** CPU seconds of every generator process in a phase, the orchestrator included. */
function totalGeneratorCpu(phase: PhaseObservation): number {
  return Object.values(phase.generatorCpuByProcess).reduce((sum, seconds) => sum + seconds, 0);
}

function trackerCpu(phase: PhaseObservation): number {
  return Object.entries(phase.generatorCpuByProcess).reduce((sum, [name, seconds]) => sum + (name.startsWith('trackers-') ? seconds : 0), 0);
}

function perConnectMs(seconds: number | null, connects: number): number | null {
  return seconds === null || connects === 0 ? null : (seconds * 1000) / connects;
}

export function fmt(value: number | null | undefined, digits = 1): string {
  return value === null || value === undefined || !Number.isFinite(value) ? '-' : value.toFixed(digits);
}

export function latency(summary: LatencySummary | null | undefined): string {
  return summary === null || summary === undefined ? '-' : `${fmt(summary.p50Ms)} / ${fmt(summary.p99Ms)} / ${fmt(summary.maxMs)}`;
}

export function writeResult(options: BenchOptions, result: Record<string, unknown>): string {
  const outDir = path.resolve(REPO_ROOT, options.outDir);
  fs.mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, `${options.scenario}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  return path.relative(process.cwd(), file);
}

async function connectAll(harness: Harness, options: BenchOptions, tabs: number): Promise<number> {
  log(`connecting ${tabs} tabs (${sessionCountForTabs(tabs)} sessions) over ${options.projects} projects`);
  const connect = await harness.recorder.observe('connect', () =>
    connectTrackers(harness.workers, 0, tabs, { concurrencyPerWorker: options.connectConcurrency, startBatch: options.startBatch, connectTimeoutMs: options.connectTimeoutMs, deadlineMs: options.connectDeadlineMs }),
  );
  log(`  ${connect.connected} connected (${connect.failed} failed) in ${(connect.elapsedMs / 1000).toFixed(1)} s`);
  return connect.liveTabs;
}

// --- storm --------------------------------------------------------------------------------

export async function runStorm(options: BenchOptions, loadAverage1m: number): Promise<number> {
  const tabs = options.steps[options.steps.length - 1] as number;
  const harness = await startHarness(options, tabs, loadAverage1m);
  const expectedSessions = sessionCountForTabs(tabs);
  try {
    log(`storm: conditions ${JSON.stringify(harness.conditions)}`);
    const liveTabs = await connectAll(harness, options, tabs);
    await sleep(options.settleMs);
    const heap = memoryPerSession(undefined, await measureHubHeap(harness.hub), liveTabs);

    // 1. Mass disconnect: every tab's TCP socket destroyed at once; wait until the hub holds none.
    log(`dropping all ${liveTabs} tabs abruptly`);
    const drop = await harness.recorder.observe('mass disconnect (abrupt)', async () => {
      const startedAt = performance.now();
      let stop = (): void => undefined;
      const stopped = new Promise<void>((resolve) => (stop = resolve));
      const probe = probeHealth(harness.hub, stopped);
      const dropped = Promise.all(harness.workers.trackers.map((worker) => worker.request('trackers.drop', {}, 30_000)));
      const poll = await pollHub(harness.hub, startedAt, 100, 60_000, (m) => sessionConnections(m) === 0 && m.hub.hub_live_sessions === 0, dropped, polledMetrics(options));
      await dropped;
      await sleep(200);
      stop();
      return { ...poll, healthMaxMs: (await probe).maxMs };
    });
    const dropObservation = harness.recorder.observations[harness.recorder.observations.length - 1] as PhaseObservation;
    // The gauge is reset by each read: the polls' reads and the phase's closing scrape's together cover the phase.
    const dropHubStallMaxMs = maxOrNull(drop.hubStallMaxMs, dropObservation.loopStallMaxMs);
    const dropStallMs = Math.max(drop.longestStallMs ?? 0, dropObservation.eventLoopMaxMs ?? 0, dropHubStallMaxMs ?? 0, drop.healthMaxMs);
    log(`  hub empty after ${fmt(drop.doneAtMs, 0)} ms, longest stall ${fmt(dropStallMs, 0)} ms`);

    // 2. Every tab reconnects at once, no delay, no concurrency limit in the generator.
    const overflowsBefore = listenOverflows();
    const refusedBefore = refusedTotal(drop.last);
    const perWorker = Math.ceil(tabs / harness.workers.trackers.length);
    log(`reconnect storm: ${tabs} tabs at once (${perWorker} handshakes in flight per tracker worker, started ${options.startBatch === 0 ? 'all in one loop' : `${options.startBatch} per turn`})`);
    const storm = await harness.recorder.observe('reconnect storm', async () => {
      const startedAt = performance.now();
      const connecting = connectTrackers(harness.workers, 0, tabs, { concurrencyPerWorker: perWorker, startBatch: options.startBatch, connectTimeoutMs: 30_000, deadlineMs: 60_000 });
      const probe = probeHealth(harness.hub, connecting);
      const poll = await pollHub(harness.hub, startedAt, 250, 90_000, (m) => sessionConnections(m) === tabs && m.hub.hub_live_sessions === expectedSessions, connecting, polledMetrics(options));
      return { poll, connect: await connecting, healthMaxMs: (await probe).maxMs };
    });
    const stormObservation = harness.recorder.observations[harness.recorder.observations.length - 1] as PhaseObservation;
    const overflowsAfter = listenOverflows();
    const stormHubStallMaxMs = maxOrNull(storm.poll.hubStallMaxMs, stormObservation.loopStallMaxMs);
    const result = {
      conditions: harness.conditions,
      tabs,
      expectedSessions,
      heapBytesPerTabBeforeStorm: heap.loaded?.heapUsedBytes !== undefined ? heap.loaded.heapUsedBytes / Math.max(1, liveTabs) : null,
      massDisconnect: {
        hubEmptyAfterMs: drop.doneAtMs,
        longestStallMs: dropStallMs,
        loopLagMaxMs: Math.max(drop.longestStallMs ?? 0, dropObservation.eventLoopMaxMs ?? 0),
        hubStallMaxMs: dropHubStallMaxMs,
        healthProbeMaxMs: drop.healthMaxMs,
        stalls: dropObservation.loopStalls,
        hubCpuSeconds: dropObservation.hubCpuSeconds,
      },
      storm: {
        exactAfterMs: storm.poll.doneAtMs,
        longestStallMs: Math.max(storm.poll.longestStallMs ?? 0, stormObservation.eventLoopMaxMs ?? 0, stormHubStallMaxMs ?? 0, storm.healthMaxMs),
        loopLagMaxMs: Math.max(storm.poll.longestStallMs ?? 0, stormObservation.eventLoopMaxMs ?? 0),
        hubStallMaxMs: stormHubStallMaxMs,
        healthProbeMaxMs: storm.healthMaxMs,
        stalls: stormObservation.loopStalls,
        polls: storm.poll.polls,
        connected: storm.connect.connected,
        failed: storm.connect.failed,
        connectLatency: storm.connect.connectLatency,
        refusedByHub: refusedTotal(storm.poll.last) - refusedBefore,
        listenOverflowsMachineWide: overflowsBefore !== null && overflowsAfter !== null ? overflowsAfter - overflowsBefore : null,
        finalSessionConnections: sessionConnections(storm.poll.last) ?? null,
        finalLiveSessions: storm.poll.last?.hub.hub_live_sessions ?? null,
        hubCpuSeconds: stormObservation.hubCpuSeconds,
        hubCpuMsPerConnect: perConnectMs(stormObservation.hubCpuSeconds, storm.connect.connected),
        /** Every generator process, the orchestrator included, per connect made. */
        generatorCpuMsPerConnect: perConnectMs(totalGeneratorCpu(stormObservation), storm.connect.connected),
        trackerWorkersCpuMsPerConnect: perConnectMs(trackerCpu(stormObservation), storm.connect.connected),
        generatorCpuByProcess: stormObservation.generatorCpuByProcess,
      },
      phases: harness.recorder.observations,
      errors: harness.errors.toJson(),
    };
    log(`\n== storm at ${tabs} tabs (${expectedSessions} sessions) ==`);
    log(
      renderTable(
        ['figure', 'value', 'target'],
        [
          ['mass disconnect: hub empty after (ms)', fmt(result.massDisconnect.hubEmptyAfterMs, 0), '-'],
          ['mass disconnect: longest loop stall (ms)', fmt(result.massDisconnect.longestStallMs, 0), '<= 100'],
          ['  of which: loop-lag max / hub stall max / slowest /health (ms)', `${fmt(result.massDisconnect.loopLagMaxMs, 0)} / ${fmt(result.massDisconnect.hubStallMaxMs, 0)} / ${fmt(result.massDisconnect.healthProbeMaxMs, 0)}`, '-'],
          ['mass disconnect: stalls >= 20 / > 100 ms, longest under (hub histogram)', describeStalls(result.massDisconnect.stalls), '- / 0'],
          ['storm: session count exact after (ms)', fmt(result.storm.exactAfterMs, 0), '<= 10000'],
          ['storm: longest loop stall (ms)', fmt(result.storm.longestStallMs, 0), '<= 150'],
          ['  of which: loop-lag max / hub stall max / slowest /health (ms)', `${fmt(result.storm.loopLagMaxMs, 0)} / ${fmt(result.storm.hubStallMaxMs, 0)} / ${fmt(result.storm.healthProbeMaxMs, 0)}`, '-'],
          ['storm: stalls >= 20 / > 150 ms, longest under (hub histogram)', describeStalls(result.storm.stalls, 'over150ms'), '- / 0'],
          ['storm: connected / failed', `${result.storm.connected} / ${result.storm.failed}`, `${tabs} / 0`],
          ['storm: connect p50 / p99 / max (ms)', latency(storm.connect.connectLatency), '-'],
          ['storm: refused by the hub', String(result.storm.refusedByHub), '0'],
          ['storm: listen-queue overflows (machine-wide)', String(result.storm.listenOverflowsMachineWide ?? '-'), '0'],
          ['hub CPU s: disconnect / storm', `${fmt(result.massDisconnect.hubCpuSeconds, 2)} / ${fmt(result.storm.hubCpuSeconds, 2)}`, '-'],
          ['storm: hub CPU per connect (ms)', fmt(result.storm.hubCpuMsPerConnect, 3), '-'],
          [`storm: generator CPU per connect, all / tracker workers (ms; ${options.generator})`, `${fmt(result.storm.generatorCpuMsPerConnect, 3)} / ${fmt(result.storm.trackerWorkersCpuMsPerConnect, 3)}`, '-'],
          ['storm: generator CPU by process (of one core)', generatorCpuLine(stormObservation), '-'],
        ],
      ),
    );
    log(renderPhases({ phases: harness.recorder.observations } as never));
    log(PHASE_TABLE_NOTE);
    log(renderGeneratorCpu(harness.recorder.observations));
    log(`errors: ${JSON.stringify(result.errors)}`);
    log(`results: ${writeResult(options, result)}`);
    return 0;
  } finally {
    await harness.close();
  }
}

// --- mixed --------------------------------------------------------------------------------

export async function runMixed(options: BenchOptions, loadAverage1m: number): Promise<number> {
  const tabs = options.steps[options.steps.length - 1] as number;
  const harness = await startHarness(options, tabs, loadAverage1m);
  const { workers, recorder } = harness;
  try {
    log(`mixed: conditions ${JSON.stringify(harness.conditions)}`);
    const liveTabs = await connectAll(harness, options, tabs);
    await sleep(options.settleMs);
    // Unmeasured warm-up of the search path (JIT), as the standard run does.
    const rest = { durationMs: options.diffDurationMs, concurrency: options.restConcurrency, requestTimeoutMs: 10_000, gzip: options.restGzip, searchLimit: options.searchLimit };
    await runRest(workers, 'search', options.restConcurrency, liveTabs, { ...rest, durationMs: 1000 });

    const relayConnect = await recorder.observe('relay connect', () =>
      workers.relay.request('relay.connect', { pairs: options.relayPairs, sessionOffset: 0, connectTimeoutMs: 10_000 }, 60_000),
    );
    log(`relay: ${relayConnect.connectedPairs}/${options.relayPairs} pairs connected`);
    log(
      `all at once for ${options.diffDurationMs / 1000} s: ${options.restConcurrency} REST search clients, ${options.dashboards} dashboards with ${options.diffRate} changes/s, ` +
        `${relayConnect.connectedPairs} relay pairs (${options.relayBytes} B each way, ${options.relayPauseMs} ms pause)`,
    );
    const relayArgs = { durationMs: options.diffDurationMs, pauseMs: options.relayPauseMs, replyTimeoutMs: 5000, payloadBytes: options.relayBytes };
    const runAll = () =>
      runDiffs(
        recorder,
        workers,
        { dashboards: options.dashboards, projectCount: options.projects, changesPerSecond: options.diffRate, durationMs: options.diffDurationMs, connectTimeoutMs: 10_000, ackTimeoutMs: 10_000, drainMs: 1500 },
        () =>
          Promise.all([
            runRest(workers, 'search', options.restConcurrency, liveTabs, rest),
            workers.relay.request('relay.run', relayArgs, options.diffDurationMs + 40_000),
          ]),
        'everything at once',
      );
    let diffs: Awaited<ReturnType<typeof runAll>>;
    try {
      diffs = await runAll();
    } finally {
      await workers.relay.request('relay.close', {}, 30_000);
    }
    const [search, relay] = diffs.alongside;
    const relayLatency = mergeHistograms([relay.roundTrip]).summary();
    const relayRate = relay.sent / (relay.elapsedMs / 1000);
    const mixedObservation = recorder.observations.find((o) => o.phase === 'everything at once');
    const errorTotal = Object.values(harness.errors.toJson()).reduce((sum, n) => sum + n, 0);
    const result = {
      conditions: harness.conditions,
      search,
      generatorCpuByProcess: mixedObservation?.generatorCpuByProcess ?? null,
      relay: { pairs: relayConnect.connectedPairs, sent: relay.sent, answered: relay.answered, timedOut: relay.timedOut, pingsPerSecond: relayRate, roundTrip: relayLatency, workerLoopDelay: relay.loopDelay },
      diffs: { ...diffs, alongside: undefined },
      phases: recorder.observations,
      errors: harness.errors.toJson(),
    };
    log(`\n== mixed at ${tabs} tabs (${sessionCountForTabs(tabs)} sessions) ==`);
    log(
      renderTable(
        ['figure', 'value', 'target'],
        [
          [`search req/s (${options.restConcurrency} clients)`, fmt(search.requestsPerSecond, 0), '>= 5000'],
          ['search p50 / p99 / max (ms)', latency(search.latency), '-'],
          ['relay round trip p50 / p99 / max (ms)', latency(relayLatency), 'p99 <= 20'],
          ['relay pings/s (pongs as many)', fmt(relayRate, 0), `~${Math.round((relayConnect.connectedPairs * 1000) / Math.max(1, options.relayPauseMs))}`],
          ['diff latency p50 / p99 / max (ms)', latency(diffs.diffLatency), 'p99 <= 100'],
          ['tracker changes/s sent', fmt(diffs.changesPerSecond, 0), String(options.diffRate)],
          ['diff events / seq gaps', `${diffs.diffEvents} / ${diffs.seqGaps}`, '- / 0'],
          ['hub CPU (of one core) / loop max (ms)', `${fmt((mixedObservation?.hubCpuCores ?? NaN) * 100, 0)}% / ${fmt(mixedObservation ? phaseStallMs(mixedObservation) : null, 0)}`, '-'],
          [`generator CPU, all processes (of one core; ${options.generator})`, `${fmt(mixedObservation === undefined ? NaN : ((totalGeneratorCpu(mixedObservation) ?? NaN) / (mixedObservation.durationMs / 1000)) * 100, 0)}%`, '-'],
          ['generator CPU by process', generatorCpuLine(mixedObservation), '-'],
          ['hub GC in the phase', mixedObservation?.hubGc ? describeGc(mixedObservation.hubGc) : '-', '-'],
          [`main threads' wait for a CPU in the phase (ms of ${fmt((mixedObservation?.durationMs ?? NaN) / 1000, 1)} s)`, cpuWaitLine(mixedObservation), '-'],
          ['relay worker loop delay p99 / max (ms)', `${fmt(relay.loopDelay.p99Ms, 1)} / ${fmt(relay.loopDelay.maxMs, 1)}`, '-'],
          ['errors (REST failed + worker errors)', `${search.failed} + ${errorTotal}`, '0'],
        ],
      ),
    );
    log(renderPhases({ phases: recorder.observations } as never));
    log(PHASE_TABLE_NOTE);
    log(renderGeneratorCpu(recorder.observations));
    log(`errors: ${JSON.stringify(result.errors)}`);
    log(`results: ${writeResult(options, result)}`);
    return search.failed + errorTotal > 0 ? 1 : 0;
  } finally {
    await harness.close();
  }
}
