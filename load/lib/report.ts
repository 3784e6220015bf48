/** The bench's result document and its human-readable rendering. */

/** The phase that disconnects every tab at once: a stress of its own, kept out of the step's worst-phase figures. */
export const TEARDOWN_PHASE = 'disconnect all tabs';
import type { GcResult } from './hub';
import { phaseStallMs, type ConnectPhaseResult, type DiffPhaseResult, type MemoryResult, type PhaseObservation, type RelayPhaseResult, type RestPhaseResult, type ThreadTimeSplit } from './phases';
import { REST_OPERATIONS, isSearchOperation } from './rest';
import type { ErrorCountsJson, LatencySummary } from './stats';

export interface StepResult {
  tabs: number;
  sessions: number;
  /** Time until GET /ready answered 200 (managed hub only). */
  hubReadyMs: number | null;
  connect: ConnectPhaseResult & { hubCpuMsPerConnect: number | null };
  memory: MemoryResult;
  /** The same, measured again after the REST phases (null when they were skipped). */
  memoryAfterRest: MemoryResult | null;
  rest: RestPhaseResult[];
  relay: RelayPhaseResult | null;
  diffs: DiffPhaseResult | null;
  /** Hub-side observation of every phase, in order. */
  phases: PhaseObservation[];
  /** Worst per-phase hub event-loop p99 of the step's measuring phases (teardown excluded). */
  eventLoopP99WorstMs: number | null;
  /** Longest hub event-loop stall in any phase of the step. */
  eventLoopMaxWorstMs: number | null;
  errors: ErrorCountsJson;
}

export interface BenchResult {
  tool: 'live-session-hub load bench';
  startedAt: string;
  finishedAt: string | null;
  durationMs: number | null;
  completed: boolean;
  failure: string | null;
  mode: 'managed' | 'url';
  hub: {
    url: string;
    command: string | null;
    commandNote: string | null;
    openFileLimit: number | null;
    logFile: string | null;
    heapSource: GcResult['source'] | null;
  };
  /** loadAverage1m: the box's 1-minute load average before the bench started anything (build, hub, workers). */
  machine: { cpus: number; node: string; platform: string; totalMemoryBytes: number; loadAverage1m: number };
  options: Record<string, unknown>;
  steps: StepResult[];
  errors: ErrorCountsJson;
}

// --- formatting ---------------------------------------------------------------------------

function ms(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '-';
  if (value < 1) return value.toFixed(2);
  if (value < 100) return value.toFixed(1);
  return Math.round(value).toString();
}

function pair(summary: LatencySummary | null | undefined): string {
  if (summary === null || summary === undefined || summary.count === 0) return '-';
  return `${ms(summary.p50Ms)} / ${ms(summary.p99Ms)}`;
}

function rate(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '-';
  return value >= 100 ? Math.round(value).toString() : value.toFixed(1);
}

function kilobytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return '-';
  return (bytes / 1024).toFixed(1);
}

function megabytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return '-';
  return (bytes / 1024 / 1024).toFixed(1);
}

/** Left column of labels, one right-aligned column per step. */
export function renderTable(header: string[], rows: string[][]): string {
  const widths = header.map((cell, column) => Math.max(cell.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: string[]): string =>
    cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0))).join('  ');
  return [line(header), widths.map((width) => '-'.repeat(width)).join('  '), ...rows.map(line)].join('\n');
}

function restRow(step: StepResult, operation: string, clients: number): RestPhaseResult | undefined {
  return step.rest.find((result) => result.operation === operation && result.clients === clients);
}

/**
 * The hub's CPU time per answered request of a REST phase: its cost, whatever limits the rate (on a
 * shared 2-core machine, often the generator).
 */
function hubMicrosPerRequest(step: StepResult, operation: string, clients: number): string {
  const rest = restRow(step, operation, clients);
  const phase = step.phases.find((p) => p.phase === `rest ${operation} x${clients}`);
  if (!rest || !phase || phase.hubCpuSeconds === null || rest.ok === 0) return '-';
  return ((phase.hubCpuSeconds * 1e6) / rest.ok).toFixed(0);
}

/** Heap used, V8's committed heap and RSS (beyond the committed heap: native memory and heap pages V8 has not returned yet). */
function heapFigures(gc: GcResult | null | undefined): string {
  return `${megabytes(gc?.heapUsedBytes)} / ${megabytes(gc?.heapTotalBytes)} / ${megabytes(gc?.rssBytes)}`;
}

/** A search rate as a share of the same phase's rate at the first (smallest) step. */
function shareOfFirstStep(steps: StepResult[], step: StepResult, operation: string, clients: number): string {
  const first = steps[0] === undefined ? undefined : restRow(steps[0], operation, clients)?.requestsPerSecond;
  const here = restRow(step, operation, clients)?.requestsPerSecond;
  if (first === undefined || here === undefined || first <= 0) return '-';
  return `${Math.round((here / first) * 100)}%`;
}

export function renderSummary(result: BenchResult): string {
  const steps = result.steps;
  const header = ['metric', ...steps.map((step) => `${step.tabs} tabs`)];
  const row = (label: string, cell: (step: StepResult) => string): string[] => [label, ...steps.map(cell)];
  const concurrency = steps[0]?.rest.find((r) => r.clients > 1)?.clients ?? 16;
  const heapNote = result.hub.heapSource === 'debug/gc' ? 'after GC' : `NOT after GC: ${result.hub.heapSource ?? 'n/a'}`;
  const rows: string[][] = [
    row('live sessions (tabs)', (s) => `${s.sessions} (${s.connect.liveTabs})`),
    row('connect rate (/s)', (s) => rate(s.connect.connectsPerSecond)),
    row('connect latency p50 / p99 (ms)', (s) => pair(s.connect.connectLatency)),
    row('hub CPU per connect (ms)', (s) => ms(s.connect.hubCpuMsPerConnect)),
    row(`hub heap per session (KB, ${heapNote})`, (s) => kilobytes(s.memory.heapBytesPerSession)),
    row('hub RSS per session (KB)', (s) => kilobytes(s.memory.rssBytesPerSession)),
    row('hub heap / RSS per session after REST (KB)', (s) => `${kilobytes(s.memoryAfterRest?.heapBytesPerSession)} / ${kilobytes(s.memoryAfterRest?.rssBytesPerSession)}`),
    row('hub heap used / committed / RSS (MB)', (s) => heapFigures(s.memory.loaded)),
    row('the same after REST (MB)', (s) => heapFigures(s.memoryAfterRest?.loaded)),
  ];
  for (const operation of REST_OPERATIONS) {
    rows.push(row(`REST ${operation} x1 p50 / p99 (ms)`, (s) => pair(restRow(s, operation, 1)?.latency)));
    rows.push(row(`REST ${operation} x1 req/s`, (s) => rate(restRow(s, operation, 1)?.requestsPerSecond)));
    rows.push(row(`REST ${operation} x${concurrency} req/s`, (s) => rate(restRow(s, operation, concurrency)?.requestsPerSecond)));
    if (isSearchOperation(operation)) {
      rows.push(row(`REST ${operation} x${concurrency} req/s, share of the first step`, (s) => shareOfFirstStep(steps, s, operation, concurrency)));
    }
    rows.push(row(`REST ${operation} x${concurrency} p50 / p99 (ms)`, (s) => pair(restRow(s, operation, concurrency)?.latency)));
    rows.push(row(`REST ${operation} x${concurrency} hub CPU per request (µs)`, (s) => hubMicrosPerRequest(s, operation, concurrency)));
    rows.push(row(`REST ${operation} response size on the wire (KB)`, (s) => kilobytes(restRow(s, operation, concurrency)?.meanResponseBytes)));
  }
  rows.push(
    row('relay idle p50 / p99 (ms)', (s) => pair(s.relay?.idle?.roundTrip)),
    row(`relay + ${concurrency} REST searches p50 / p99`, (s) => pair(s.relay?.underRestLoad?.roundTrip)),
    row('dashboards subscribed', (s) => (s.diffs === null ? '-' : `${s.diffs.subscribed}/${s.diffs.dashboards}`)),
    row('diff latency p50 / p99 (ms)', (s) => pair(s.diffs?.diffLatency)),
    row('diff latency samples', (s) => String(s.diffs?.diffLatency.count ?? '-')),
    row('hub event-loop p99, worst phase (ms)', (s) => ms(s.eventLoopP99WorstMs)),
    row('hub event-loop longest stall (ms)', (s) => ms(s.eventLoopMaxWorstMs)),
    row('hub loop stall, all tabs leaving at once (ms)', (s) => {
      const teardown = s.phases.find((p) => p.phase === TEARDOWN_PHASE);
      return ms(teardown ? phaseStallMs(teardown) : null);
    }),
    row('errors', (s) => String(Object.values(s.errors).reduce((sum, n) => sum + n, 0))),
  );
  return renderTable(header, rows);
}

/** Per-phase hub observations of one step: CPU, event loop, generator CPU, errors. */
export function renderPhases(step: StepResult): string {
  const rows = step.phases.map((phase) => [
    phase.phase,
    (phase.durationMs / 1000).toFixed(1),
    phase.hubCpuCores === null ? '-' : `${Math.round(phase.hubCpuCores * 100)}%`,
    ms(phase.eventLoopP99Ms),
    ms(phaseStallMs(phase)),
    `${Math.round((phase.generatorCpuSeconds / (phase.durationMs / 1000)) * 100)}%`,
    String(Object.values(phase.errors).reduce((sum, n) => sum + n, 0)),
    threadSplitCell(phase.hubMainThread),
    share(phase.boxIdleShare),
  ]);
  return renderTable(['phase', 'sec', 'hub CPU', 'hub loop p99 ms', 'stall max ms', 'generator CPU', 'errors', 'hub main: CPU/wait/sleep', 'box idle'], rows);
}

/** `62/26/12%`: the hub main thread on a CPU / waiting for one / sleeping ('-' when unknown, e.g. a results file from before). */
export function threadSplitCell(split: ThreadTimeSplit | null | undefined): string {
  if (split === null || split === undefined) return '-';
  return `${Math.round(split.onCpu * 100)}/${Math.round(split.waiting * 100)}/${Math.round(split.sleeping * 100)}%`;
}

function share(value: number | null | undefined): string {
  return value === null || value === undefined || !Number.isFinite(value) ? '-' : `${Math.round(value * 100)}%`;
}

/** Names of the generator processes seen in any phase, in order of first appearance. */
function generatorProcesses(phases: readonly PhaseObservation[]): string[] {
  const names = new Set<string>();
  for (const phase of phases) for (const name of Object.keys(phase.generatorCpuByProcess)) names.add(name);
  return [...names];
}

/** Each generator process's CPU per phase (% of one core): which worker costs what. */
export function renderGeneratorCpu(phases: readonly PhaseObservation[]): string {
  const names = generatorProcesses(phases);
  const rows = phases.map((phase) => [
    phase.phase,
    ...names.map((name) => {
      const seconds = phase.generatorCpuByProcess[name];
      const system = phase.generatorSystemCpuByProcess[name];
      const percent = (used: number): number => Math.round((used / (phase.durationMs / 1000)) * 100);
      return seconds === undefined ? '-' : `${percent(seconds)}%${system === undefined ? '' : ` (${percent(system)})`}`;
    }),
  ]);
  return renderTable(['generator CPU by process (kernel)', ...names], rows);
}

/** One phase's generator CPU by process, as `name 12%, …` (largest first; processes under 1% left out). */
export function generatorCpuLine(phase: PhaseObservation | undefined): string {
  if (phase === undefined) return '-';
  const seconds = phase.durationMs / 1000;
  return Object.entries(phase.generatorCpuByProcess)
    .sort((a, b) => b[1] - a[1])
    .filter(([, used]) => used / seconds >= 0.01)
    .map(([name, used]) => `${name} ${Math.round((used / seconds) * 100)}%`)
    .join(', ');
}

/**
 * Each process's main-thread wait for a CPU over a phase (ms, `hub` first, then the longest), the
 * processes that waited under 1% of the phase left out.
 */
export function cpuWaitLine(phase: PhaseObservation | undefined): string {
  if (phase === undefined) return '-';
  const entries = Object.entries(phase.mainThreadWaitMsByProcess);
  if (entries.length === 0) return '-';
  return entries
    .sort((a, b) => (a[0] === 'hub' ? -1 : b[0] === 'hub' ? 1 : b[1] - a[1]))
    .filter(([name, ms]) => name === 'hub' || ms >= phase.durationMs / 100)
    .map(([name, ms]) => `${name} ${Math.round(ms)}`)
    .join(', ');
}

export const PHASE_TABLE_NOTE =
  'CPU columns are % of one core (generator = all load workers together, without the orchestrator; by process in the table below, with the kernel\'s part in brackets); hub loop p99 includes the 10 ms sampling interval; stall max is the hub\'s hub_event_loop_stall_max_seconds (prom-client\'s loop-lag max on a server without it); hub main = the hub\'s main thread on a CPU / runnable but waiting for one / sleeping (nothing to do), as shares of the phase (schedstat); box idle = the machine\'s idle share of all its cores (/proc/stat). Waiting with the box not idle: box-bound; sleeping with work pending: a bubble.';

export function renderErrors(result: BenchResult): string {
  const kinds = Object.keys(result.errors);
  if (kinds.length === 0) return 'no errors';
  const header = ['error kind', ...result.steps.map((step) => `${step.tabs} tabs`), 'total'];
  const rows = kinds.map((kind) => [kind, ...result.steps.map((step) => String(step.errors[kind] ?? 0)), String(result.errors[kind])]);
  return renderTable(header, rows);
}
