/**
 * A queue of jobs run in turns of at most `budgetMs` of event-loop time, yielding to I/O between
 * turns (setImmediate). A burst of expensive requests (every dashboard subscribing again after a
 * restart: a snapshot each) then delays its own members, not the relay and REST traffic around it.
 * The queue holds what its callers bound (a socket's subscriptions are capped).
 */
import { performance } from 'node:perf_hooks';

export class TurnBudgetQueue {
  private readonly jobs: Array<() => void> = [];
  private next = 0;
  private scheduled = false;

  constructor(
    private readonly budgetMs: number,
    private readonly onError: (error: unknown) => void,
  ) {}

  get size(): number {
    return this.jobs.length - this.next;
  }

  push(job: () => void): void {
    this.jobs.push(job);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.turn);
  }

  private readonly turn = (): void => {
    const until = performance.now() + this.budgetMs;
    // At least one job per turn, however long it takes: progress is guaranteed.
    do {
      const job = this.jobs[this.next];
      this.jobs[this.next++] = noop;
      try {
        job?.();
      } catch (error) {
        this.onError(error);
      }
    } while (this.next < this.jobs.length && performance.now() < until);
    if (this.next === this.jobs.length) {
      this.jobs.length = 0;
      this.next = 0;
      this.scheduled = false;
    } else {
      setImmediate(this.turn);
    }
  };
}

function noop(): void {}
