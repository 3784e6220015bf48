/**
 * A queue of jobs run in turns of at most `budgetMs` of event-loop time, yielding to I/O between
 * turns (setImmediate). A burst of expensive requests (every dashboard subscribing again after a
 * restart: a snapshot each) then delays its own members, not the relay and REST traffic around it.
 * The queue holds what its callers bound (a socket's subscriptions are capped).
 *
 * A job's cost does not end when it returns: the process.nextTick callbacks and promise reactions
 * it queued run after the whole turn (Node drains them once the immediate returns), outside any
 * check made inside the turn. Socket.IO connects and engine.io upgrades do most of their work
 * there. So the queue learns what a job costs with its aftermath (a moving average) and runs no
 * more jobs in a turn than the budget pays for, as well as stopping when the budget's time is up.
 * Costs are CPU time, not wall time: on a busy machine the process is descheduled in the middle
 * of turns, and wall-clock costs taken then made the queue run one job per turn for a long while
 * (REST throughput fell by half with three hubs on two cores).
 */
import { performance } from 'node:perf_hooks';

/** Taken slots a lane that never drains keeps before it drops them (at most half its length). */
const COMPACT_AFTER = 1024;

/** Weight of the latest turn in the moving average of a job's cost. */
const COST_WEIGHT = 0.3;

/**
 * One turn in this many reads the CPU clock (a getrusage system call at each end of the turn);
 * the others reuse the average. In a restart storm Node accepts one connection per loop iteration,
 * so a turn runs one or two jobs and its fixed cost is paid per connect.
 */
const MEASURE_EVERY = 4;

export class TurnBudgetQueue {
  private readonly jobs = new Lane();
  /** Jobs that go before every job of `jobs` (work already under way, which holds resources until done). */
  private readonly urgent = new Lane();
  private scheduled = false;
  /** A job's cost with its ticks and microtasks (ms, moving average); 0 until a turn was measured. */
  private jobCostMs = 0;
  /** The CPU clock at the start of the last turn, when that turn is measured. */
  private turnCpu: NodeJS.CpuUsage | undefined;
  private turnJobs = 0;
  private turnStartedAt = 0;
  /** Turns and jobs run so far, and their wall time with the ticks they left (the loop-stall trace reads it). */
  readonly stats = { turns: 0, jobs: 0, busyMs: 0 };

  constructor(
    private readonly budgetMs: number,
    private readonly onError: (error: unknown) => void,
    /** Told the jobs left after each turn (for a gauge). */
    private readonly onTurnEnd?: (left: number) => void,
  ) {}

  get size(): number {
    return this.jobs.size + this.urgent.size;
  }

  push(job: () => void): void {
    this.jobs.push(job);
    this.schedule();
  }

  /** Queues `job` ahead of every job queued with `push` (in order with the other urgent ones). */
  pushUrgent(job: () => void): void {
    this.urgent.push(job);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.turn);
  }

  /** The next job, urgent ones first. */
  private take(): (() => void) | undefined {
    return this.urgent.size > 0 ? this.urgent.take() : this.jobs.take();
  }

  private readonly turn = (): void => {
    const cpu = this.jobCostMs === 0 || this.stats.turns % MEASURE_EVERY === 0 ? process.cpuUsage() : undefined;
    this.turnStartedAt = performance.now();
    const until = this.turnStartedAt + this.budgetMs;
    const maxJobs = this.jobCostMs > 0 ? Math.max(1, Math.floor(this.budgetMs / this.jobCostMs)) : Number.POSITIVE_INFINITY;
    let ran = 0;
    // At least one job per turn, however long it takes: progress is guaranteed.
    do {
      const job = this.take();
      ran++;
      try {
        job?.();
      } catch (error) {
        this.onError(error);
      }
    } while (this.size > 0 && ran < maxJobs && performance.now() < until);
    if (this.size === 0) this.scheduled = false;
    else setImmediate(this.turn);
    this.turnCpu = cpu;
    this.turnJobs = ran;
    this.stats.turns++;
    this.stats.jobs += ran;
    // Runs after the ticks the jobs queued, and its microtask after their promise reactions.
    process.nextTick(this.afterTicks);
    this.onTurnEnd?.(this.size);
  };

  private readonly afterTicks = (): void => {
    queueMicrotask(this.measured);
  };

  private readonly measured = (): void => {
    this.stats.busyMs += performance.now() - this.turnStartedAt;
    if (!this.turnCpu) return;
    const perJob = cpuMsSince(this.turnCpu) / this.turnJobs;
    this.jobCostMs = this.jobCostMs === 0 ? perJob : this.jobCostMs + COST_WEIGHT * (perJob - this.jobCostMs);
  };
}

function noop(): void {}

/** Jobs in order, taken from the front without shifting the array each time. */
export class Lane {
  private readonly items: Array<() => void> = [];
  private next = 0;

  get size(): number {
    return this.items.length - this.next;
  }

  /** Array slots held, taken ones included (what the lane costs in memory). */
  get held(): number {
    return this.items.length;
  }

  push(job: () => void): void {
    this.items.push(job);
  }

  take(): (() => void) | undefined {
    const job = this.items[this.next];
    this.items[this.next++] = noop;
    if (this.next === this.items.length) {
      this.items.length = 0;
      this.next = 0;
    } else if (this.next >= COMPACT_AFTER && this.next * 2 >= this.items.length) {
      // A lane that never drains (a steady backlog) would otherwise keep every job it ever held.
      this.items.splice(0, this.next);
      this.next = 0;
    }
    return job;
  }
}

/** CPU time (user + system, ms) the process used since `start`. */
function cpuMsSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}
