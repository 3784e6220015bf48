/**
 * The hub under test: starting and stopping it (when the bench manages it), waiting for it to
 * be ready, and reading its own measurements (Prometheus /metrics, POST /debug/gc, /proc).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { settleWithin, sleep } from './async';
import { httpRequest, isRecord } from './http';

export interface ManagedHubOptions {
  /** Shell command that runs the hub in the foreground, e.g. `node --expose-gc dist/index.js`. */
  command: string;
  cwd: string;
  port: number;
  apiKey: string;
  jwtSecret: string;
  openFileLimit: number;
  logFile: string;
  /** Extra environment on top of the bench's own. */
  env?: Record<string, string>;
  /** Nice value of the hub's autogroup (see `ManagedHub.start`); default: this process's own nice. */
  autogroupNice?: number;
}

/** Hubs started and not yet exited: killed if the bench exits without its cleanup running. */
const runningHubs = new Set<ManagedHub>();
process.once('exit', () => {
  for (const hub of runningHubs) hub.killNow();
});

/** A hub the bench started: its own process group, so stopping it also stops any wrapper (npx). */
export class ManagedHub {
  private exitDescription: string | undefined;
  private readonly exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly logFile: string,
  ) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitDescription = signal !== null ? `signal ${signal}` : `exit code ${code}`;
        resolve();
      });
    });
  }

  static start(options: ManagedHubOptions): ManagedHub {
    const logFd = fs.openSync(options.logFile, 'a');
    // `ulimit -n` in the hub's own shell: the bench cannot raise another process's limit, and
    // 19k tracker sockets need ~19k descriptors in the hub. `exec` makes the hub the group leader.
    const script = `ulimit -n ${options.openFileLimit} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec ${options.command}`;
    const child = spawn('bash', ['-c', script], {
      cwd: options.cwd,
      detached: true,
      stdio: ['ignore', logFd, logFd],
      env: {
        ...process.env,
        LISTEN_PORT: String(options.port),
        LISTEN_HOST: '127.0.0.1',
        HUB_API_KEYS: `${options.apiKey}:*`,
        ASSIST_JWT_SECRET: options.jwtSecret,
        HUB_DEBUG_GC: '1',
        LOG_LEVEL: 'warn',
        // The bench measures capacity: the per-key REST rate limit would turn it into a 429 count.
        REST_RATE_LIMIT: '0',
        ...options.env,
      },
    });
    fs.closeSync(logFd);
    // Detached, the hub leads a session of its own, and with the kernel's autogroups (on by default)
    // a session's processes share one group's CPU weight: their nice values count only inside it.
    // The hub thus ran at a group nice of 0 under `nice -n -10 npm run bench`, with the CPU of a
    // loaded box split evenly between it, the generator's session and every other session
    // (docs/performance.md, "Fifth pass", relay). Its group gets the bench's nice.
    if (child.pid !== undefined) setAutogroupNice(child.pid, options.autogroupNice ?? os.getPriority());
    const hub = new ManagedHub(child, options.logFile);
    runningHubs.add(hub);
    void hub.exited.then(() => runningHubs.delete(hub));
    return hub;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Undefined while running; how it ended otherwise. */
  get exit(): string | undefined {
    return this.exitDescription;
  }

  /** The hub's open-file limit as the kernel sees it (from /proc), if readable. */
  openFileLimit(): number | undefined {
    if (this.child.pid === undefined) return undefined;
    try {
      const limits = fs.readFileSync(`/proc/${this.child.pid}/limits`, 'utf8');
      const match = /^Max open files\s+(\d+)/m.exec(limits);
      return match ? Number(match[1]) : undefined;
    } catch {
      return undefined;
    }
  }

  /** SIGTERM to the process group, SIGKILL after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.exitDescription !== undefined || this.child.pid === undefined) return;
    signalGroup(this.child.pid, 'SIGTERM');
    await settleWithin(this.exited, graceMs);
    if (this.exitDescription === undefined) {
      signalGroup(this.child.pid, 'SIGKILL');
      await settleWithin(this.exited, 2000);
    }
  }

  killNow(): void {
    if (this.exitDescription === undefined && this.child.pid !== undefined) signalGroup(this.child.pid, 'SIGKILL');
  }

  logTail(lines = 30): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }
}

function signalGroup(groupLeaderPid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-groupLeaderPid, signal);
  } catch {
    // Already gone.
  }
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

/** Polls GET /ready until 200. `isAlive` lets a managed hub that crashed fail fast. */
export async function waitReady(baseUrl: string, timeoutMs: number, isAlive: () => boolean = () => true): Promise<number> {
  const startedAt = performance.now();
  let lastProblem = 'no answer yet';
  while (performance.now() - startedAt < timeoutMs) {
    if (!isAlive()) throw new Error('the hub process exited before it was ready');
    try {
      const response = await httpRequest({ method: 'GET', url: `${baseUrl}/ready`, timeoutMs: 2000 });
      if (response.status === 200) return performance.now() - startedAt;
      lastProblem = `GET /ready answered ${response.status}`;
    } catch (error) {
      lastProblem = error instanceof Error ? error.message : String(error);
    }
    await sleep(200);
  }
  throw new Error(`hub at ${baseUrl} not ready after ${timeoutMs} ms (${lastProblem})`);
}

// --- metrics ------------------------------------------------------------------------------

/** One scrape of the hub's /metrics, reduced to what the bench reports. */
export interface HubMetrics {
  takenAtMs: number;
  cpuSeconds?: number;
  residentMemoryBytes?: number;
  heapUsedBytes?: number;
  /** prom-client resets its event-loop histogram on every scrape: this covers the time since the previous scrape. */
  eventLoopP99Seconds?: number;
  eventLoopMinSeconds?: number;
  eventLoopMaxSeconds?: number;
  /**
   * The hub's own `hub_event_loop_stall_max_seconds`: the longest stall since the previous scrape,
   * which (unlike prom-client's max) a stall ended by the scrape cannot escape. Absent on a server
   * without it (e.g. OpenReplay's, through --hub-cmd).
   */
  loopStallMaxSeconds?: number;
  /** Every sample whose name starts with `hub_`, keyed by `name{labels}`. */
  hub: Record<string, number>;
  /**
   * `hub_event_loop_stalls_seconds` by bucket bound in seconds (cumulative counts, `+Inf` last):
   * every stall the hub counted, whoever scraped in between (see {@link stallsBetween}).
   */
  stallBuckets: Array<[number, number]>;
  /** prom-client's `nodejs_gc_duration_seconds` samples (counts, sums, buckets by kind): see {@link gcBetween}. */
  gc: Map<string, number>;
}

/** The hub's GC between two scrapes, from prom-client's `nodejs_gc_duration_seconds`. */
export interface GcWindow {
  /** Scavenges (young generation) and their pauses summed. */
  minor: number;
  minorMs: number;
  /** Mark-compacts: their final pause only; the marking before it runs concurrently, on V8's helper threads. */
  major: number;
  majorMs: number;
  /**
   * prom-client's `incremental` kind. It is not the main thread's marking steps: V8's trace showed
   * 236–451 ms of those in a mark-compact while this stayed at 0.
   */
  incrementalMs: number;
  /** Pauses of any kind longer than 10 and 100 ms (prom-client's bucket bounds). */
  over10ms: number;
  over100ms: number;
}

const GC_METRIC = 'nodejs_gc_duration_seconds';

/** What changed in `nodejs_gc_duration_seconds` from scrape `a` to scrape `b` (samples keyed by `name{labels}`). */
export function gcBetween(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): GcWindow {
  const delta = (key: string): number => (b.get(key) ?? 0) - (a.get(key) ?? 0);
  const count = (kind: string): number => delta(`${GC_METRIC}_count{kind="${kind}"}`);
  const ms = (kind: string): number => delta(`${GC_METRIC}_sum{kind="${kind}"}`) * 1000;
  // Pauses longer than a bucket bound: every kind's count less its count at or under the bound.
  const longerThan = (le: string): number => {
    let n = 0;
    for (const key of b.keys()) {
      if (key.startsWith(`${GC_METRIC}_count{`)) n += delta(key);
      else if (key.startsWith(`${GC_METRIC}_bucket{`) && key.includes(`le="${le}"`)) n -= delta(key);
    }
    return n;
  };
  return {
    minor: count('minor'),
    minorMs: ms('minor'),
    major: count('major'),
    majorMs: ms('major'),
    incrementalMs: ms('incremental'),
    over10ms: longerThan('0.01'),
    over100ms: longerThan('0.1'),
  };
}

/**
 * One line for a report: `1 major (38 ms) + 46 scavenges (422 ms); 13 > 10 ms, 0 > 100 ms`. A major's
 * figure is its final pause only: its marking ran before, on the helper threads and in steps on the
 * main thread, and shows as the run's stalls, not here.
 */
export function describeGc(gc: GcWindow): string {
  const round = (n: number): string => n.toFixed(0);
  return `${gc.major} major (${round(gc.majorMs)} ms) + ${gc.minor} scavenges (${round(gc.minorMs)} ms); ${gc.over10ms} > 10 ms, ${gc.over100ms} > 100 ms`;
}

/** Parses Prometheus text exposition into `name{labels}` -> value (comments and NaN skipped). */
export function parsePrometheusText(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const rawLine of text.split('\n')) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    // name{labels} value [timestamp]; label values may contain spaces, so split after the '}'.
    const braceEnd = line.indexOf('}');
    const keyEnd = braceEnd >= 0 ? braceEnd + 1 : line.search(/\s/);
    if (keyEnd <= 0) continue;
    const key = line.slice(0, keyEnd);
    const value = Number(line.slice(keyEnd).trim().split(/\s+/)[0]);
    if (!Number.isNaN(value)) samples.set(key, value);
  }
  return samples;
}

const STALLS_METRIC = 'hub_event_loop_stalls_seconds';

/** The hub's event-loop stalls between two scrapes, from its histogram (20 ms and longer). */
export interface StallWindow {
  count: number;
  over100ms: number;
  over150ms: number;
  /** The bucket bound (ms) the longest stall is under; null: none, Infinity: over the last bound. */
  longestAtMostMs: number | null;
}

/** What changed in `hub_event_loop_stalls_seconds` from scrape `a` to `b`; null when either lacks it. */
export function stallsBetween(a: HubMetrics['stallBuckets'], b: HubMetrics['stallBuckets']): StallWindow | null {
  if (a.length === 0 || b.length === 0 || a.length !== b.length) return null;
  const deltas = b.map(([le, count], i) => [le, count - (a[i]?.[1] ?? 0)] as const);
  const count = deltas[deltas.length - 1]?.[1] ?? 0;
  const atMost = (ms: number): number => deltas.find(([le]) => le * 1000 >= ms)?.[1] ?? count;
  const longest = deltas.find(([, n]) => n === count);
  return {
    count,
    over100ms: count - atMost(100),
    over150ms: count - atMost(150),
    longestAtMostMs: count === 0 || longest === undefined ? null : longest[0] * 1000,
  };
}

/**
 * One scrape of the hub's /metrics: every family, or only `names` (`/metrics?name=...`; a server
 * that ignores the parameter, e.g. OpenReplay's, answers with all of them, which parses the same).
 */
export async function scrapeMetrics(baseUrl: string, apiKey: string, names?: readonly string[]): Promise<HubMetrics | undefined> {
  try {
    const url = `${baseUrl}/metrics${names === undefined ? '' : `?${names.map((name) => `name=${encodeURIComponent(name)}`).join('&')}`}`;
    let response = await httpRequest({ method: 'GET', url, timeoutMs: 10_000 });
    // Some deployments protect /metrics; the bench's API key is the only credential it has.
    if (response.status === 401 || response.status === 403) {
      response = await httpRequest({ method: 'GET', url, headers: { authorization: apiKey }, timeoutMs: 10_000 });
    }
    if (response.status !== 200) return undefined;
    const samples = parsePrometheusText(response.body);
    const metrics: HubMetrics = { takenAtMs: Date.now(), hub: {}, gc: new Map(), stallBuckets: [] };
    const assign = (field: Exclude<keyof HubMetrics, 'takenAtMs' | 'hub' | 'gc' | 'stallBuckets'>, name: string): void => {
      const value = samples.get(name);
      if (value !== undefined) metrics[field] = value;
    };
    assign('cpuSeconds', 'process_cpu_seconds_total');
    assign('residentMemoryBytes', 'process_resident_memory_bytes');
    assign('heapUsedBytes', 'nodejs_heap_size_used_bytes');
    assign('eventLoopP99Seconds', 'nodejs_eventloop_lag_p99_seconds');
    assign('eventLoopMinSeconds', 'nodejs_eventloop_lag_min_seconds');
    assign('eventLoopMaxSeconds', 'nodejs_eventloop_lag_max_seconds');
    assign('loopStallMaxSeconds', 'hub_event_loop_stall_max_seconds');
    // Histogram buckets would swamp the report; their _sum and _count are kept.
    for (const [key, value] of samples) {
      if (key.startsWith(`${STALLS_METRIC}_bucket{le="`)) metrics.stallBuckets.push([Number(key.slice(STALLS_METRIC.length + 12, -2)), value]);
      else if (key.startsWith('hub_') && !key.includes('_bucket{')) metrics.hub[key] = value;
      else if (key.startsWith(GC_METRIC)) metrics.gc.set(key, value);
    }
    return metrics;
  } catch {
    return undefined;
  }
}

export interface GcResult {
  heapUsedBytes: number;
  rssBytes: number;
  /** V8's committed heap and the hub's external (native) memory, when /debug/gc reports them. */
  heapTotalBytes?: number;
  externalBytes?: number;
  /** Only 'debug/gc' is after a forced GC; 'debug/gc without --expose-gc' is the hub's memoryUsage() as is. */
  source: 'debug/gc' | 'debug/gc without --expose-gc' | 'metrics' | 'proc';
}

/**
 * Heap and RSS after a forced full GC (POST /debug/gc, available when the hub runs with
 * --expose-gc and HUB_DEBUG_GC=1). Falls back to /metrics, then to /proc for a local hub
 * process: those are NOT after GC and the result says so in `source`.
 */
export async function measureHeap(baseUrl: string, apiKey: string, hubPid?: number): Promise<GcResult | undefined> {
  try {
    const response = await httpRequest({ method: 'POST', url: `${baseUrl}/debug/gc`, body: '{}', timeoutMs: 30_000 });
    if (response.status === 200) {
      const parsed: unknown = JSON.parse(response.body);
      if (isRecord(parsed) && typeof parsed.heapUsed === 'number' && typeof parsed.rss === 'number') {
        const source = parsed.gc === false ? 'debug/gc without --expose-gc' : 'debug/gc';
        const extra = {
          ...(typeof parsed.heapTotal === 'number' ? { heapTotalBytes: parsed.heapTotal } : {}),
          ...(typeof parsed.external === 'number' ? { externalBytes: parsed.external } : {}),
        };
        return { heapUsedBytes: parsed.heapUsed, rssBytes: parsed.rss, source, ...extra };
      }
    }
  } catch {
    // Not available: fall through.
  }
  const metrics = await scrapeMetrics(baseUrl, apiKey);
  if (metrics?.heapUsedBytes !== undefined && metrics.residentMemoryBytes !== undefined) {
    return { heapUsedBytes: metrics.heapUsedBytes, rssBytes: metrics.residentMemoryBytes, source: 'metrics' };
  }
  const proc = hubPid !== undefined ? readProcessStats(hubPid) : undefined;
  return proc !== undefined ? { heapUsedBytes: Number.NaN, rssBytes: proc.rssBytes, source: 'proc' } : undefined;
}

export interface ProcessStats {
  cpuSeconds: number;
  rssBytes: number;
}

/** CPU time and RSS of a local process from /proc (Linux), or undefined. */
export function readProcessStats(pid: number): ProcessStats | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesized command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticksPerSecond = 100;
    const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? Number.NaN);
    return { cpuSeconds, rssBytes: rssKb * 1024 };
  } catch {
    return undefined;
  }
}

/** `/proc/<pid>/autogroup` ("/autogroup-42 nice -10"): the nice of the process's autogroup, if readable. */
export function parseAutogroupNice(text: string): number | undefined {
  const match = /\bnice\s+(-?\d+)/.exec(text);
  return match ? Number(match[1]) : undefined;
}

export function readAutogroupNice(pid: number): number | undefined {
  try {
    return parseAutogroupNice(fs.readFileSync(`/proc/${pid}/autogroup`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Sets the nice of a process's autogroup (lowering it needs CAP_SYS_NICE); false where it cannot. */
export function setAutogroupNice(pid: number, nice: number): boolean {
  try {
    fs.writeFileSync(`/proc/${pid}/autogroup`, String(nice));
    return true;
  } catch {
    return false;
  }
}

export interface ThreadSchedStats {
  /** Time the thread ran on a CPU (ms). */
  runMs: number;
  /** Time it was runnable and waited in a run queue for a CPU (ms). */
  waitMs: number;
}

/** `/proc/<pid>/schedstat` ("run_ns wait_ns timeslices", of the thread-group leader: the main thread). */
export function parseSchedstat(text: string): ThreadSchedStats | undefined {
  const [run, wait] = text.trim().split(/\s+/).map(Number);
  if (run === undefined || wait === undefined || !Number.isFinite(run) || !Number.isFinite(wait)) return undefined;
  return { runMs: run / 1e6, waitMs: wait / 1e6 };
}

/** The machine's CPU time since boot, in clock ticks: all of it, and the part spent idle (idle + iowait). */
export interface BoxCpuTicks {
  totalTicks: number;
  idleTicks: number;
}

/** The first line of `/proc/stat` ("cpu  user nice system idle iowait irq softirq steal ..."). */
export function parseProcStatCpu(text: string): BoxCpuTicks | undefined {
  const line = text.split('\n', 1)[0] ?? '';
  const [label, ...fields] = line.trim().split(/\s+/);
  const ticks = fields.slice(0, 8).map(Number);
  if (label !== 'cpu' || ticks.length < 5 || ticks.some((tick) => !Number.isFinite(tick))) return undefined;
  return { totalTicks: ticks.reduce((sum, tick) => sum + tick, 0), idleTicks: (ticks[3] ?? 0) + (ticks[4] ?? 0) };
}

/** The machine's CPU ticks from /proc/stat (Linux), or undefined. */
export function readBoxCpu(): BoxCpuTicks | undefined {
  try {
    return parseProcStatCpu(fs.readFileSync('/proc/stat', 'utf8'));
  } catch {
    return undefined;
  }
}

/** The main thread's scheduler figures of a local process (Linux with schedstats), or undefined. */
export function readMainThreadSched(pid: number): ThreadSchedStats | undefined {
  try {
    return parseSchedstat(fs.readFileSync(`/proc/${pid}/schedstat`, 'utf8'));
  } catch {
    return undefined;
  }
}

// --- build --------------------------------------------------------------------------------

export interface HubCommandChoice {
  command: string;
  note: string;
}

/**
 * The default hub command: build, then `node --expose-gc dist/index.js`. The build is skipped
 * when dist/index.js is newer than every file under src/. If the build fails (a half-written
 * src/ elsewhere in the tree), the hub runs from source through tsx instead, with a warning.
 */
export function chooseDefaultHubCommand(repoRoot: string, build: boolean): HubCommandChoice {
  const distEntry = path.join(repoRoot, 'dist', 'index.js');
  const srcEntry = path.join(repoRoot, 'src', 'index.ts');
  const fromSource = `node --expose-gc --import tsx src/index.ts`;
  if (!build) {
    if (fs.existsSync(distEntry)) return { command: 'node --expose-gc dist/index.js', note: 'not rebuilt (--no-build)' };
    if (fs.existsSync(srcEntry)) return { command: fromSource, note: 'no dist/index.js: running src/ through tsx' };
    throw new Error('neither dist/index.js nor src/index.ts exists: nothing to start');
  }
  if (fs.existsSync(distEntry) && newestMtimeMs(path.join(repoRoot, 'src')) < fs.statSync(distEntry).mtimeMs) {
    return { command: 'node --expose-gc dist/index.js', note: 'dist/ is up to date' };
  }
  const buildStartedMs = Date.now();
  const result = spawnSync('npm', ['run', 'build', '--silent'], { cwd: repoRoot, encoding: 'utf8', timeout: 300_000 });
  if (result.status === 0) return { command: 'node --expose-gc dist/index.js', note: 'built with npm run build' };
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim().split('\n').slice(0, 8).join('\n');
  if (fs.existsSync(srcEntry)) {
    return { command: fromSource, note: `npm run build failed, running src/ through tsx instead:\n${output}` };
  }
  const emitted = fs.existsSync(distEntry) && fs.statSync(distEntry).mtimeMs >= buildStartedMs;
  if (emitted) return { command: 'node --expose-gc dist/index.js', note: `npm run build reported errors:\n${output}` };
  throw new Error(`npm run build failed and there is no src/index.ts:\n${output}`);
}

function newestMtimeMs(directory: string): number {
  let newest = 0;
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else newest = Math.max(newest, fs.statSync(full).mtimeMs);
    }
  };
  if (fs.existsSync(directory)) walk(directory);
  return newest;
}
