/**
 * The event loop's longest stall, measured so that no stall is missed, and (a debug setting) what
 * each long one was made of.
 *
 * prom-client's `nodejs_eventloop_lag_max_seconds` reads perf_hooks' delay histogram and resets it
 * at every scrape. The reset also forgets when the histogram's timer last ran, so the timer's next
 * run records nothing: a stall that ends with a scrape served before the timers run again (a
 * /metrics request read in the same poll phase as a mass disconnect's socket ends) is recorded nowhere. Here a
 * timer notes when it last ran; a stall is how late its next run is; a scrape takes the longest
 * stall since the previous scrape together with the one under way, and forgets nothing else.
 */
import { readFileSync } from 'node:fs';
import { type PerformanceEntry, PerformanceObserver, constants, performance } from 'node:perf_hooks';

/** How often the monitor's timer runs (ms): the resolution of the stall figures. */
export const LOOP_STALL_TICK_MS = 10;

/**
 * Stalls at least this long are counted one by one (hub_event_loop_stalls_seconds): shorter ones are
 * timer jitter and ordinary turns, and would only cost an observation per tick.
 */
export const LOOP_STALL_COUNTED_MS = 20;

/** How late a timer that should have run `intervalMs` after the previous run was (ms, never below 0). */
export function stallOf(gapMs: number, intervalMs: number): number {
  return Math.max(0, gapMs - intervalMs);
}

export class LoopStallMonitor {
  private lastTickAt = performance.now();
  private maxSinceTakeMs = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly intervalMs: number = LOOP_STALL_TICK_MS,
    /** Told every tick: when the previous one ran and this one's gap (for the debug trace). */
    private readonly onTick?: (previousAt: number, now: number, stallMs: number) => void,
  ) {}

  start(): void {
    if (this.timer) return;
    this.lastTickAt = performance.now();
    this.timer = setInterval(this.tick, this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * The longest stall (ms) since the previous call, the one under way included (a scrape runs in
   * a turn that may itself be late). The timer's last run is kept, so the stall under way is
   * counted again, whole, by the next call: reported twice rather than missed.
   */
  takeMaxMs(): number {
    const max = Math.max(this.maxSinceTakeMs, stallOf(performance.now() - this.lastTickAt, this.intervalMs));
    this.maxSinceTakeMs = 0;
    return max;
  }

  private readonly tick = (): void => {
    const now = performance.now();
    const stallMs = stallOf(now - this.lastTickAt, this.intervalMs);
    if (stallMs > this.maxSinceTakeMs) this.maxSinceTakeMs = stallMs;
    this.onTick?.(this.lastTickAt, now, stallMs);
    this.lastTickAt = now;
  };
}

// --- debug trace (HUB_DEBUG_LOOP_STALL_MS) ---------------------------------------------------

/** A cumulative count the trace reports the increase of during a stall (jobs run, sockets ended...). */
export interface StallCounter {
  name: string;
  read(): number;
}

interface Snapshot {
  at: number;
  /** The main thread's time on a CPU and waiting for one (ns, /proc/thread-self/schedstat), when readable. */
  onCpuNs: number | undefined;
  runQueueNs: number | undefined;
  cpu: NodeJS.CpuUsage;
  counters: number[];
}

interface GcEntry {
  startTime: number;
  duration: number;
  kind: string;
}

export interface StallReport {
  stallMs: number;
  gapMs: number;
  /** The main thread, during the gap: on a CPU, waiting in the run queue for one (the machine busy). */
  mainOnCpuMs: number | null;
  mainRunQueueMs: number | null;
  /** Every thread of the process (GC helpers included), user + system. */
  processCpuMs: number;
  /** From the tick before the stall to the first check-phase callback queued by it: timers, I/O polling and callbacks (the poll phase). */
  untilCheckMs: number | null;
  gc: { count: number; totalMs: number; maxMs: number; kinds: Record<string, number> };
  counters: Record<string, number>;
}

const GC_KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenge',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'mark_compact',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental_marking',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak_callbacks',
};

/** GC entries kept for the trace (a stall of a second holds a few dozen scavenges at most). */
const GC_KEPT = 256;

/**
 * Logs every stall of at least `thresholdMs` with what it held: the GC pauses that fell in it,
 * whether the main thread ran or waited for a CPU, how long until the check phase (I/O polling),
 * and the increase of each counter. A debugging aid: it reads a /proc file at every tick.
 */
export class LoopStallTrace {
  private previous: Snapshot;
  private checkAt: number | undefined;
  private readonly gcEntries: GcEntry[] = [];
  private readonly observer: PerformanceObserver;

  constructor(
    private readonly thresholdMs: number,
    private readonly counters: readonly StallCounter[],
    private readonly report: (report: StallReport) => void,
  ) {
    this.previous = this.snapshot();
    this.observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        const kind = ((entry as PerformanceEntry & { detail?: { kind?: number } }).detail)?.kind ?? -1;
        this.gcEntries.push({ startTime: entry.startTime, duration: entry.duration, kind: GC_KINDS[kind] ?? String(kind) });
      }
      if (this.gcEntries.length > GC_KEPT) this.gcEntries.splice(0, this.gcEntries.length - GC_KEPT);
    });
    this.observer.observe({ entryTypes: ['gc'] });
  }

  stop(): void {
    this.observer.disconnect();
  }

  /** The monitor's `onTick`. */
  readonly onTick = (previousAt: number, now: number, stallMs: number): void => {
    const current = this.snapshot();
    if (stallMs >= this.thresholdMs) this.report(this.describe(previousAt, now, stallMs, current));
    this.previous = current;
    this.checkAt = undefined;
    setImmediate(this.markCheck);
  };

  private readonly markCheck = (): void => {
    this.checkAt = performance.now();
  };

  private describe(previousAt: number, now: number, stallMs: number, current: Snapshot): StallReport {
    const before = this.previous;
    const gc = { count: 0, totalMs: 0, maxMs: 0, kinds: {} as Record<string, number> };
    for (const entry of this.gcEntries) {
      if (entry.startTime + entry.duration < previousAt || entry.startTime > now) continue;
      gc.count++;
      gc.totalMs += entry.duration;
      gc.maxMs = Math.max(gc.maxMs, entry.duration);
      gc.kinds[entry.kind] = (gc.kinds[entry.kind] ?? 0) + entry.duration;
    }
    const counters: Record<string, number> = {};
    this.counters.forEach((counter, i) => {
      counters[counter.name] = (current.counters[i] ?? 0) - (before.counters[i] ?? 0);
    });
    const cpu = current.cpu.user + current.cpu.system - before.cpu.user - before.cpu.system;
    return {
      stallMs: round(stallMs),
      gapMs: round(now - previousAt),
      mainOnCpuMs: nsDelta(current.onCpuNs, before.onCpuNs),
      mainRunQueueMs: nsDelta(current.runQueueNs, before.runQueueNs),
      processCpuMs: round(cpu / 1000),
      untilCheckMs: this.checkAt !== undefined && this.checkAt >= previousAt ? round(this.checkAt - previousAt) : null,
      gc: { count: gc.count, totalMs: round(gc.totalMs), maxMs: round(gc.maxMs), kinds: Object.fromEntries(Object.entries(gc.kinds).map(([k, v]) => [k, round(v)])) },
      counters,
    };
  }

  private snapshot(): Snapshot {
    const sched = readSchedstat();
    return { at: performance.now(), onCpuNs: sched?.[0], runQueueNs: sched?.[1], cpu: process.cpuUsage(), counters: this.counters.map((c) => c.read()) };
  }
}

/** The calling thread's time on a CPU and in the run queue (ns), or undefined off Linux. */
function readSchedstat(): [number, number] | undefined {
  try {
    const [onCpu, waiting] = readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ');
    return [Number(onCpu), Number(waiting)];
  } catch {
    return undefined;
  }
}

function nsDelta(after: number | undefined, before: number | undefined): number | null {
  return after === undefined || before === undefined ? null : round((after - before) / 1e6);
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
