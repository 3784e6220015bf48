/**
 * Hub CPU per tracker connect, A/B, with little noise: `npm run bench:connect -- [options]`.
 *
 * Why not the storm: a storm's hub CPU per connect moved 0.55–1.04 ms between runs of one build on
 * this shared two-core box (docs/performance.md, fourth pass), twenty times the effect of most
 * single changes, and CPU time per connect grows with whatever else runs (cache, the hypervisor).
 * Here two hubs (A and B) run side by side and are driven AT ONCE, round after round, by lean tabs
 * opened at the same fixed rate, so that both see the same machine. Each round reads each hub's
 * CPU (every thread, nanoseconds, from /proc/<pid>/task/<tid>/schedstat) just before the first
 * tab and once the last tab is connected and the hub is quiet again; the idle CPU of the same hub
 * over the same length of time is subtracted. The figure to read is B/A per round. Before every round the
 * previous round's tabs are dropped abruptly (as in the storm), the hub is waited on until it holds
 * none, and a full GC is forced (POST /debug/gc), so that every round starts from the same heap.
 *
 * Options: --a 'node --expose-gc dist/index.js' (hub A's command, run in --a-dir, default this
 * tree), --b … --b-dir …, --a-env VAR=value and --b-env VAR=value (repeatable; the usual way to
 * switch one setting), --tabs 3000 (per round), --rate 1500 (tab opens per second), --rounds 12
 * (per hub), --warmup 2 (rounds per hub before measuring), --in-flight 200.
 * The whole run is one command: take the bench lock around it.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sleep } from './lib/async';
import { findFreePort, ManagedHub, scrapeMetrics, waitReady } from './lib/hub';
import { httpRequest } from './lib/http';
import { type LeanSocket, openLeanSocket } from './lib/leanSocket';
import { newRunTag, type PopulationConfig, sessionInfoOf, tabIdentity, userAgentOf } from './lib/population';

interface Side {
  name: 'A' | 'B';
  command: string;
  cwd: string;
  env: Record<string, string>;
}

interface Options {
  a: Side;
  b: Side;
  tabs: number;
  rate: number;
  rounds: number;
  warmup: number;
  inFlight: number;
}

const REPO_ROOT = path.resolve(__dirname, '..');
const SOCKET_PATH = '/ws-assist/socket';

function parseOptions(argv: readonly string[]): Options {
  const single = new Map<string, string>();
  const envs: Record<'A' | 'B', Record<string, string>> = { A: {}, B: {} };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i] as string;
    const value = argv[i + 1];
    if (!flag.startsWith('--') || value === undefined) throw new Error(`expected --flag value, got ${flag}`);
    i += 1;
    if (flag === '--a-env' || flag === '--b-env') {
      const eq = value.indexOf('=');
      if (eq <= 0) throw new Error(`${flag} wants VAR=value, got ${value}`);
      envs[flag === '--a-env' ? 'A' : 'B'][value.slice(0, eq)] = value.slice(eq + 1);
    } else {
      single.set(flag, value);
    }
  }
  const number = (flag: string, fallback: number): number => {
    const parsed = Number(single.get(flag) ?? fallback);
    if (!Number.isFinite(parsed) || parsed < 0) throw new Error(`${flag} wants a number`);
    return parsed;
  };
  // --trace-gc: the hub's log then tells what a round allocated and how long its GC pauses were.
  const defaultCommand = 'node --expose-gc --trace-gc dist/index.js';
  return {
    a: { name: 'A', command: single.get('--a') ?? defaultCommand, cwd: path.resolve(single.get('--a-dir') ?? REPO_ROOT), env: envs.A },
    b: { name: 'B', command: single.get('--b') ?? defaultCommand, cwd: path.resolve(single.get('--b-dir') ?? REPO_ROOT), env: envs.B },
    tabs: number('--tabs', 3000),
    rate: number('--rate', 1500),
    rounds: number('--rounds', 12),
    warmup: number('--warmup', 2),
    inFlight: number('--in-flight', 200),
  };
}

/** CPU time of every thread of a process, in nanoseconds (schedstat's first field). */
function processCpuNs(pid: number): number {
  let total = 0;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // A thread that ended between the listing and the read.
    }
  }
  return total;
}

interface RunningHub {
  side: Side;
  hub: ManagedHub;
  logFile: string;
  /** Where the log stood before the forced GC that opened the current round. */
  logOffset: number;
  pid: number;
  url: string;
  apiKey: string;
  population: PopulationConfig;
  tabs: LeanSocket[];
}

async function startHub(side: Side): Promise<RunningHub> {
  const port = await findFreePort();
  const apiKey = crypto.randomBytes(12).toString('hex');
  const logFile = path.join(os.tmpdir(), `connect-cost-${side.name}-${process.pid}.log`);
  const hub = ManagedHub.start({
    command: side.command,
    cwd: side.cwd,
    port,
    apiKey,
    jwtSecret: crypto.randomBytes(16).toString('hex'),
    openFileLimit: 20_000,
    logFile,
    env: side.env,
  });
  const url = `http://127.0.0.1:${port}`;
  await waitReady(url, 30_000, () => hub.exit === undefined);
  // `exec` in the wrapper shell makes the hub the process itself.
  const pid = hub.pid;
  if (pid === undefined) throw new Error(`hub ${side.name} has no pid`);
  return { side, hub, logFile, logOffset: 0, pid, url, apiKey, population: { projectCount: 20, runTag: newRunTag(Date.now()), startedAtMs: Date.now() }, tabs: [] };
}

async function openTab(target: RunningHub, index: number): Promise<LeanSocket> {
  const tab = tabIdentity(index, target.population);
  return openLeanSocket({
    url: target.url,
    path: SOCKET_PATH,
    query: { peerId: tab.peerId, identity: 'session', tabId: tab.tabId, sessionInfo: JSON.stringify(sessionInfoOf(tab, tab.tabNumber, target.population)) },
    headers: { 'user-agent': userAgentOf(tab.sessionIndex) },
    timeoutMs: 20_000,
  });
}

/** Opens `tabs` tabs, one every 1/rate s, at most `inFlight` unanswered; resolves when all are answered. */
async function openPaced(target: RunningHub, options: Options): Promise<{ failed: number }> {
  let failed = 0;
  let inFlight = 0;
  const startedAt = performance.now();
  const pending: Promise<void>[] = [];
  for (let index = 0; index < options.tabs; index++) {
    const dueAt = startedAt + (index * 1000) / options.rate;
    while (performance.now() < dueAt || inFlight >= options.inFlight) await sleep(Math.max(1, dueAt - performance.now()));
    inFlight += 1;
    pending.push(
      openTab(target, index).then(
        (socket) => {
          inFlight -= 1;
          target.tabs.push(socket);
        },
        () => {
          inFlight -= 1;
          failed += 1;
        },
      ),
    );
  }
  await Promise.all(pending);
  return { failed };
}

async function hubConnections(target: RunningHub): Promise<number | undefined> {
  const metrics = await scrapeMetrics(target.url, target.apiKey);
  return metrics?.hub.hub_live_sessions;
}

/** Drops every tab abruptly, waits until the hub holds no session, then forces a full GC. */
async function reset(target: RunningHub): Promise<void> {
  for (const tab of target.tabs) tab.drop();
  target.tabs = [];
  target.logOffset = fs.statSync(target.logFile).size;
  for (let i = 0; i < 600 && (await hubConnections(target)) !== 0; i++) await sleep(50);
  await httpRequest({ method: 'POST', url: `${target.url}/debug/gc`, body: '{}', timeoutMs: 30_000 });
  await sleep(200);
}

interface RoundResult {
  side: 'A' | 'B';
  /** Hub CPU per connect, idle CPU taken off, µs. */
  perConnectUs: number;
  windowMs: number;
  idleShare: number;
  failed: number;
  /** From the hub's --trace-gc lines, when its command has the flag: allocated per connect, main-thread GC pause per connect, GCs in the round. */
  allocatedKb?: number;
  gcPauseUs?: number;
  scavenges?: number;
}

/**
 * From a stretch of --trace-gc lines that starts and ends with a forced GC: the bytes allocated
 * between the two (each GC's heap before it, less the previous GC's heap after it), the main
 * thread's pauses of every GC after the first, and how many GCs ran in between.
 */
export function gcFromTrace(trace: string): { allocatedBytes: number; pauseMs: number; collections: number } | undefined {
  const lines = [...trace.matchAll(/: [A-Za-z -]+?(?: \([a-z ]+\))? ([\d.]+) \([\d.]+\) -> ([\d.]+) \([\d.]+\) MB, ([\d.]+) \/ [\d.]+ ms/g)];
  if (lines.length < 2) return undefined;
  let allocatedMb = 0;
  let pauseMs = 0;
  for (let i = 1; i < lines.length; i++) {
    allocatedMb += Number((lines[i] as RegExpMatchArray)[1]) - Number((lines[i - 1] as RegExpMatchArray)[2]);
    pauseMs += Number((lines[i] as RegExpMatchArray)[3]);
  }
  return { allocatedBytes: allocatedMb * 1024 * 1024, pauseMs, collections: lines.length - 2 };
}

/** One round: both hubs reset, then both driven at once over the same window, so that whatever else runs on the machine weighs on both alike. */
async function round(hubs: readonly RunningHub[], options: Options): Promise<RoundResult[]> {
  await Promise.all(hubs.map((hub) => reset(hub)));
  // The hubs' own idle CPU (timers, the loop-delay sampler) over a quiet half second.
  const idleFrom = hubs.map((hub) => processCpuNs(hub.pid));
  const idleAt = performance.now();
  await sleep(500);
  const idleMs = performance.now() - idleAt;
  const idleNsPerMs = hubs.map((hub, i) => (processCpuNs(hub.pid) - (idleFrom[i] as number)) / idleMs);
  const cpuBefore = hubs.map((hub) => processCpuNs(hub.pid));
  const startedAt = performance.now();
  const opened = await Promise.all(hubs.map((hub) => openPaced(hub, options)));
  // Work the hub defers past the CONNECT answer (the lifecycle queue, the index's turn) is part
  // of a connect: let it finish.
  await sleep(200);
  const windowMs = performance.now() - startedAt;
  const cpuAfter = hubs.map((hub) => processCpuNs(hub.pid));
  // A forced GC closes the round's allocation count.
  await Promise.all(hubs.map((hub) => httpRequest({ method: 'POST', url: `${hub.url}/debug/gc`, body: '{}', timeoutMs: 30_000 })));
  await sleep(100);
  return hubs.map((hub, i) => {
    const cpuNs = (cpuAfter[i] as number) - (cpuBefore[i] as number);
    const connected = Math.max(1, options.tabs - (opened[i] as { failed: number }).failed);
    const gc = gcFromTrace(fs.readFileSync(hub.logFile, 'utf8').slice(hub.logOffset));
    const failed = (opened[i] as { failed: number }).failed;
    const idleNs = (idleNsPerMs[i] as number) * windowMs;
    return {
      side: hub.side.name,
      perConnectUs: (cpuNs - idleNs) / 1000 / connected,
      windowMs,
      idleShare: idleNs / cpuNs,
      failed,
      ...(gc !== undefined ? { allocatedKb: gc.allocatedBytes / 1024 / connected, gcPauseUs: (gc.pauseMs * 1000) / connected, scavenges: gc.collections } : {}),
    };
  });
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function loadAverage(): string {
  return os.loadavg().map((value) => value.toFixed(2)).join(' ');
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const describe = (side: Side): string => `${side.command} in ${side.cwd}${Object.keys(side.env).length > 0 ? ` with ${JSON.stringify(side.env)}` : ''}`;
  process.stdout.write(`connect cost: ${options.tabs} tabs per round at ${options.rate}/s, ${options.rounds} rounds per hub after ${options.warmup} warm-up rounds\n`);
  process.stdout.write(`A: ${describe(options.a)}\nB: ${describe(options.b)}\nload average at start: ${loadAverage()}\n`);
  let revision = '';
  try {
    revision = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
  } catch {
    // Not a git tree.
  }
  const hubs = [await startHub(options.a), await startHub(options.b)] as const;
  try {
    for (let w = 0; w < options.warmup; w++) await round(hubs, options);
    const results: RoundResult[] = [];
    for (let r = 0; r < options.rounds; r++) {
      // Neither hub always gets its first tab first.
      const order = r % 2 === 0 ? [hubs[0], hubs[1]] : [hubs[1], hubs[0]];
      for (const result of await round(order, options)) {
        results.push(result);
        process.stdout.write(
          `round ${r + 1} ${result.side}: ${result.perConnectUs.toFixed(1)} µs per connect${result.allocatedKb !== undefined ? `, ${result.allocatedKb.toFixed(2)} KB allocated, GC ${result.gcPauseUs?.toFixed(1)} µs (${result.scavenges} GCs)` : ''} (window ${result.windowMs.toFixed(0)} ms, idle ${(result.idleShare * 100).toFixed(1)}%, failed ${result.failed}), load ${loadAverage()}\n`,
        );
      }
    }
    const of = (side: 'A' | 'B'): number[] => results.filter((result) => result.side === side).map((result) => result.perConnectUs);
    const a = of('A');
    const b = of('B');
    const ratios = a.map((value, i) => (b[i] as number) / value);
    const spread = (values: number[]): string => `${Math.min(...values).toFixed(1)}–${Math.max(...values).toFixed(1)}`;
    process.stdout.write(`\nrev ${revision}, load average at end: ${loadAverage()}\n`);
    process.stdout.write(`A: median ${median(a).toFixed(1)} µs per connect (${spread(a)})\n`);
    process.stdout.write(`B: median ${median(b).toFixed(1)} µs per connect (${spread(b)})\n`);
    const alloc = (side: 'A' | 'B'): number[] => results.filter((result) => result.side === side && result.allocatedKb !== undefined).map((result) => result.allocatedKb as number);
    if (alloc('A').length > 0 && alloc('B').length > 0) {
      process.stdout.write(`allocated per connect: A median ${median(alloc('A')).toFixed(2)} KB (${spread(alloc('A'))}), B median ${median(alloc('B')).toFixed(2)} KB (${spread(alloc('B'))})\n`);
      const pause = (side: 'A' | 'B'): number[] => results.filter((result) => result.side === side).map((result) => result.gcPauseUs ?? 0);
      process.stdout.write(`main-thread GC pause per connect: A median ${median(pause('A')).toFixed(1)} µs, B median ${median(pause('B')).toFixed(1)} µs\n`);
    }
    process.stdout.write(`B/A per round pair: median ${median(ratios).toFixed(3)} (${Math.min(...ratios).toFixed(3)}–${Math.max(...ratios).toFixed(3)})\n`);
  } finally {
    for (const hub of hubs) {
      for (const tab of hub.tabs) tab.drop();
      await hub.hub.stop();
    }
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exitCode = 1;
  });
}
