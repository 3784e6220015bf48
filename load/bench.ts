/**
 * Load bench for the live session hub: `npm run bench` (standard) / `npm run bench:quick` (smoke).
 *
 * The bench either starts the hub itself (default; restarted for every step so each step
 * measures connects and memory from zero) or drives a running one (`--url`; steps then ramp up
 * the same population). The load itself runs in forked worker processes (load/worker.ts).
 * See load/README.md for what is measured and how to read the output.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sleep } from './lib/async';
import { chooseDefaultHubCommand, findFreePort, ManagedHub, waitReady, type GcResult } from './lib/hub';
import { USAGE, UsageError, parseOptions, type BenchOptions } from './lib/options';
import {
  PhaseRecorder,
  closeTrackers,
  connectTrackers,
  measureHubHeap,
  memoryPerSession,
  phaseStallMs,
  runDiffs,
  runRelay,
  runRestMatrix,
  type HubTarget,
} from './lib/phases';
import { sessionCountForTabs } from './lib/population';
import { REST_OPERATIONS } from './lib/rest';
import { PHASE_TABLE_NOTE, TEARDOWN_PHASE, renderErrors, renderGeneratorCpu, renderPhases, renderSummary, type BenchResult, type StepResult } from './lib/report';
import { ErrorCounts, describeError, type ErrorCountsJson } from './lib/stats';
import { relayAutogroupNice, startWorkerSet, workerInit, type WorkerSet } from './lib/workers';
import { runCluster3 } from './cluster3';
import { runMixed, runStorm } from './scenarios';

const REPO_ROOT = path.resolve(__dirname, '..');
const HUB_READY_TIMEOUT_MS = 60_000;

/** Everything cleanup needs, reachable from the signal handlers. */
const running: { hub: ManagedHub | undefined; workers: WorkerSet | undefined } = { hub: undefined, workers: undefined };

function log(message: string): void {
  process.stdout.write(`${message}\n`);
}

function timestampForFile(date: Date): string {
  return date.toISOString().replace(/[:.]/g, '-');
}

async function main(): Promise<number> {
  // Before the build, the hub and the workers: the figure says how busy the box was, not the bench.
  const loadAverage1m = Number(os.loadavg()[0]?.toFixed(2));
  let options: BenchOptions;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    if (error.message !== '') process.stderr.write(`${error.message}\n\n`);
    process.stderr.write(`${USAGE}\n`);
    return error.message === '' ? 0 : 2;
  }

  if (options.scenario === 'mixed') return runMixed(options, loadAverage1m);
  if (options.scenario === 'storm') return runStorm(options, loadAverage1m);
  if (options.scenario === 'cluster3') return runCluster3(options, loadAverage1m);

  const startedAt = new Date();
  const outDir = path.resolve(REPO_ROOT, options.outDir);
  fs.mkdirSync(outDir, { recursive: true });
  const resultFile = path.join(outDir, `${timestampForFile(startedAt)}.json`);
  const managed = options.url === undefined;
  const maxTabs = options.steps[options.steps.length - 1] as number;
  const trackerWorkers = options.trackerWorkers ?? Math.max(1, Math.ceil(maxTabs / 10_000));
  if (Math.ceil(maxTabs / trackerWorkers) > options.maxSocketsPerWorker) {
    process.stderr.write(`--tracker-workers ${trackerWorkers} would put more than ${options.maxSocketsPerWorker} sockets in one process\n`);
    return 2;
  }

  const overallErrors = new ErrorCounts();
  const result: BenchResult = {
    tool: 'live-session-hub load bench',
    startedAt: startedAt.toISOString(),
    finishedAt: null,
    durationMs: null,
    completed: false,
    failure: null,
    mode: managed ? 'managed' : 'url',
    hub: { url: options.url ?? '', command: null, commandNote: null, openFileLimit: null, logFile: null, heapSource: null },
    machine: { cpus: os.cpus().length, node: process.version, platform: `${os.platform()} ${os.release()}`, totalMemoryBytes: os.totalmem(), loadAverage1m },
    options: { ...options, skip: [...options.skip], apiKey: '(redacted)', jwtSecret: '(redacted)', trackerWorkers },
    steps: [],
    errors: {},
  };
  const writeResult = (): void => {
    result.errors = overallErrors.toJson();
    fs.writeFileSync(resultFile, `${JSON.stringify(result, null, 2)}\n`);
  };

  // Ctrl-C: stop workers and hub; the pending phase then fails and main() ends normally with 130.
  let interruptedBy: NodeJS.Signals | undefined;
  const interrupt = (signal: NodeJS.Signals): void => {
    interruptedBy = signal;
    log(`\n${signal}: stopping workers and hub`);
    void cleanup();
    // Should main() not come back by itself, do not hang around.
    setTimeout(() => process.exit(130), 15_000).unref();
  };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);

  try {
    log(`load average (1 min) before the bench started anything: ${loadAverage1m}`);
    let hubUrl: string;
    let hubCommand = '';
    if (managed) {
      const choice = options.hubCommand !== undefined
        ? { command: options.hubCommand, note: 'from --hub-cmd' }
        : chooseDefaultHubCommand(REPO_ROOT, options.build);
      hubCommand = choice.command;
      result.hub.command = choice.command;
      result.hub.commandNote = choice.note;
      result.hub.logFile = path.join(outDir, `${timestampForFile(startedAt)}.hub.log`);
      hubUrl = `http://127.0.0.1:${await findFreePort()}`;
      result.hub.url = hubUrl;
      log(`hub: ${choice.command}  (${choice.note.split('\n')[0]})`);
      if (choice.note.includes('\n')) log(choice.note.split('\n').slice(1).map((line) => `  ${line}`).join('\n'));
      log(`hub: started per step as bash -c 'ulimit -n ${options.openFileLimit}; exec ${choice.command}', log ${path.relative(REPO_ROOT, result.hub.logFile)}`);
      if (Object.keys(options.hubEnv).length > 0) log(`hub: --hub-env ${JSON.stringify(options.hubEnv)}`);
    } else {
      hubUrl = options.url as string;
      log(`hub: driving the running hub at ${hubUrl} (no restarts: steps ramp up)`);
      await waitReady(hubUrl, 10_000);
    }

    let currentRecorder: PhaseRecorder | undefined;
    const onWorkerErrors = (errors: ErrorCountsJson): void => {
      overallErrors.merge(errors);
      currentRecorder?.onWorkerErrors(errors);
    };
    const perStepBudgetMs = options.connectDeadlineMs + 6 * options.restDurationMs + 2 * options.relayDurationMs + options.diffDurationMs + 120_000;
    const init = workerInit(options, hubUrl, options.steps.length * perStepBudgetMs + 120_000);
    log(`workers: ${trackerWorkers} tracker process(es) + ${options.restWorkers} REST + relay + dashboards; ${options.generator} tracker and REST clients (--generator)`);
    running.workers = await startWorkerSet(trackerWorkers, options.restWorkers, init, onWorkerErrors, relayAutogroupNice(options.hubAutogroupNice, os.getPriority()));
    const workers = running.workers;

    let liveTabs = 0;
    let baseline: GcResult | undefined;
    for (const [stepIndex, tabs] of options.steps.entries()) {
      log(`\n== step ${stepIndex + 1}/${options.steps.length}: ${tabs} tabs (${sessionCountForTabs(tabs)} sessions) over ${options.projects} projects ==`);
      let hubReadyMs: number | null = null;
      let hubTarget: HubTarget = { url: hubUrl, apiKey: options.apiKey };
      if (managed) {
        // A fresh port per restart: the previous step's tabs left ~N client sockets in TIME_WAIT
        // towards the old port, and reusing it would slow the kernel's port allocation (and the
        // measured connect rate) down.
        if (stepIndex > 0) {
          hubUrl = `http://127.0.0.1:${await findFreePort()}`;
          await Promise.all(workers.all.map((worker) => worker.request('retarget', { url: hubUrl }, 10_000)));
        }
        const hub = ManagedHub.start({
          command: hubCommand,
          cwd: REPO_ROOT,
          port: Number(new URL(hubUrl).port),
          apiKey: options.apiKey,
          jwtSecret: options.jwtSecret,
          openFileLimit: options.openFileLimit,
          logFile: result.hub.logFile as string,
          env: options.hubEnv,
          ...(options.hubAutogroupNice !== undefined ? { autogroupNice: options.hubAutogroupNice } : {}),
        });
        running.hub = hub;
        result.hub.url = hubUrl;
        hubReadyMs = await waitReady(hubUrl, HUB_READY_TIMEOUT_MS, () => hub.exit === undefined).catch((error: unknown) => {
          throw new Error(`${describeError(error)}\n--- hub log tail ---\n${hub.logTail()}`);
        });
        result.hub.openFileLimit = hub.openFileLimit() ?? null;
        hubTarget = { url: hubUrl, apiKey: options.apiKey, ...(hub.pid !== undefined ? { pid: hub.pid } : {}) };
        log(`hub ready on ${hubUrl} in ${Math.round(hubReadyMs)} ms, pid ${hub.pid}, open-file limit ${result.hub.openFileLimit ?? 'unknown'}`);
        liveTabs = 0;
      }
      const recorder = new PhaseRecorder(hubTarget, () => workers.all);
      currentRecorder = recorder;
      const assertHubAlive = (): void => {
        if (running.hub?.exit !== undefined) {
          throw new Error(`the hub died (${running.hub.exit})\n--- hub log tail ---\n${running.hub.logTail()}`);
        }
      };

      if (managed || stepIndex === 0) {
        baseline = await measureHubHeap(hubTarget);
        result.hub.heapSource = baseline?.source ?? null;
      }

      log(`connecting tabs ${liveTabs}..${tabs - 1}`);
      const connectResult = await recorder.observe('connect', () =>
        connectTrackers(workers, liveTabs, tabs, {
          concurrencyPerWorker: options.connectConcurrency,
          startBatch: options.startBatch,
          connectTimeoutMs: options.connectTimeoutMs,
          deadlineMs: options.connectDeadlineMs,
        }),
      );
      const connectObservation = recorder.observations[recorder.observations.length - 1];
      const hubCpuSeconds = connectObservation?.hubCpuSeconds ?? null;
      const connect = {
        ...connectResult,
        hubCpuMsPerConnect: hubCpuSeconds !== null && connectResult.connected > 0 ? (hubCpuSeconds * 1000) / connectResult.connected : null,
      };
      liveTabs = connect.liveTabs;
      log(`  ${connect.connected} connected (${connect.failed} failed, ${connect.skipped} skipped) in ${(connect.elapsedMs / 1000).toFixed(1)} s = ${Math.round(connect.connectsPerSecond)}/s`);
      assertHubAlive();

      await sleep(options.settleMs);
      const loaded = await measureHubHeap(hubTarget);
      const memory = memoryPerSession(baseline, loaded, liveTabs);

      const restOptions = { durationMs: options.restDurationMs, concurrency: options.restConcurrency, requestTimeoutMs: 10_000, gzip: options.restGzip, searchLimit: options.searchLimit };
      if (!options.skip.has('rest')) log(`REST: ${REST_OPERATIONS.join(', ')} x1 and x${options.restConcurrency}, ${options.restDurationMs / 1000} s each`);
      const rest = options.skip.has('rest') ? [] : await runRestMatrix(recorder, workers, liveTabs, restOptions);
      assertHubAlive();
      // REST reads cache each session's JSON on first serialisation: memory as a polled hub holds it.
      const memoryAfterRest = rest.length > 0 ? memoryPerSession(baseline, await measureHubHeap(hubTarget), liveTabs) : null;

      if (!options.skip.has('relay')) log(`relay: ${options.relayPairs} agent<->tab pairs, idle then under ${options.restConcurrency} REST search clients`);
      const relay = options.skip.has('relay') ? null : await runRelay(recorder, workers, liveTabs, {
        pairs: options.relayPairs,
        durationMs: options.relayDurationMs,
        pauseMs: options.relayPauseMs,
        connectTimeoutMs: 10_000,
        sessionOffset: stepIndex * 10_000,
        rest: restOptions,
      });
      assertHubAlive();

      if (!options.skip.has('diffs')) log(`diffs: ${options.dashboards} dashboards, ${options.diffRate} tracker changes/s for ${options.diffDurationMs / 1000} s`);
      const diffs = options.skip.has('diffs') ? null : await runDiffs(recorder, workers, {
        dashboards: options.dashboards,
        projectCount: options.projects,
        changesPerSecond: options.diffRate,
        durationMs: options.diffDurationMs,
        connectTimeoutMs: 10_000,
        ackTimeoutMs: 10_000,
        drainMs: options.quick ? 500 : 1500,
      });
      assertHubAlive();

      if (managed) {
        await recorder.observe(TEARDOWN_PHASE, () => closeTrackers(workers));
        await running.hub?.stop();
        running.hub = undefined;
        liveTabs = 0;
      }
      currentRecorder = undefined;

      const stepErrors = new ErrorCounts();
      for (const observation of recorder.observations) stepErrors.merge(observation.errors);
      const measuring = recorder.observations.filter((observation) => observation.phase !== TEARDOWN_PHASE);
      const worst = (values: Array<number | null>): number | null => {
        const known = values.filter((value): value is number => value !== null);
        return known.length > 0 ? Math.max(...known) : null;
      };
      const step: StepResult = {
        tabs,
        sessions: sessionCountForTabs(tabs),
        hubReadyMs,
        connect,
        memory,
        memoryAfterRest,
        rest,
        relay,
        diffs,
        phases: recorder.observations,
        eventLoopP99WorstMs: worst(measuring.map((observation) => observation.eventLoopP99Ms)),
        eventLoopMaxWorstMs: worst(measuring.map(phaseStallMs)),
        errors: stepErrors.toJson(),
      };
      result.steps.push(step);
      writeResult();
      log(renderPhases(step));
      log(PHASE_TABLE_NOTE);
      log(renderGeneratorCpu(step.phases));
    }

    if (interruptedBy !== undefined) {
      result.failure = `interrupted by ${interruptedBy}`;
      return 130;
    }
    result.completed = true;
    return 0;
  } catch (error) {
    if (interruptedBy !== undefined) {
      result.failure = `interrupted by ${interruptedBy}`;
      return 130;
    }
    result.failure = describeError(error);
    process.stderr.write(`\nbench failed: ${result.failure}\n`);
    return 1;
  } finally {
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
    await cleanup();
    const finishedAt = new Date();
    result.finishedAt = finishedAt.toISOString();
    result.durationMs = finishedAt.getTime() - startedAt.getTime();
    writeResult();
    if (result.steps.length > 0) {
      log(`\n== summary (${result.mode} hub, ${(result.durationMs / 1000).toFixed(0)} s) ==`);
      log(renderSummary(result));
    }
    log(`\n== errors by kind ==\n${renderErrors(result)}`);
    log(`\nresults: ${path.relative(process.cwd(), resultFile)}`);
  }
}

let cleanupDone: Promise<void> | undefined;

/** Stops the workers and the managed hub; every call after the first waits for the same work. */
function cleanup(): Promise<void> {
  cleanupDone ??= (async () => {
    const { workers, hub } = running;
    running.workers = undefined;
    running.hub = undefined;
    await Promise.all([...(workers?.all ?? []).map((worker) => worker.stop(3000)), hub?.stop(3000)]);
  })();
  return cleanupDone;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench crashed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    void cleanup().finally(() => process.exit(1));
  },
);
