/** Small async helpers with bounded waiting: every wait in the bench has a limit. */

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/**
 * `promise`'s value, or `timedOut` once `ms` have passed, whichever comes first. The timer is
 * cleared when the promise wins: a race with a bare `setTimeout` leaves it pending, and a pending
 * timer keeps a process that is otherwise done (a jest worker after the bench's tests) alive until
 * it fires.
 */
export async function orAfter<T, U>(promise: Promise<T>, ms: number, timedOut: U): Promise<T | U> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<U>((resolve) => {
    timer = setTimeout(() => resolve(timedOut), Math.max(0, ms));
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits until `promise` settles (either way) or `ms` have passed. */
export async function settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  await orAfter(
    promise.then(
      () => undefined,
      () => undefined,
    ),
    ms,
    undefined,
  );
}

const TIMED_OUT: unique symbol = Symbol('timed out');

/** Resolves with the promise's value, or rejects once `ms` have passed. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  const result = await orAfter(promise, ms, TIMED_OUT);
  if (result === TIMED_OUT) throw new Error(`${what}: no answer within ${Math.round(ms)} ms`);
  return result;
}

export interface BoundedRunResult {
  /** Items whose task was started (and has finished). */
  started: number;
  /** Items never started because the deadline passed first. */
  skipped: number;
}

/**
 * Runs `task(item)` for every item with at most `concurrency` in flight, starting nothing new
 * once `deadlineAt` (a performance.now() time) has passed. Tasks must not throw.
 *
 * The lanes start `startBatch` at a time with a turn of the event loop between batches (0: all in
 * one synchronous loop). Why: a tracker worker that opened its 9,500 storm sockets in one loop
 * wrote no upgrade request until the loop was done (its sockets' 'connect' callbacks could not run),
 * so the hub received ~15,000 connections and no request for two seconds, and slept
 * (docs/performance.md, sixth pass, "bubbles"). A browser writes its request as soon as its own
 * handshake completes; batches let the worker do the same.
 */
export async function runBounded<T>(
  items: readonly T[],
  concurrency: number,
  deadlineAt: number,
  task: (item: T) => Promise<void>,
  startBatch = 0,
): Promise<BoundedRunResult> {
  let next = 0;
  let started = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length && performance.now() < deadlineAt) {
      const item = items[next++] as T;
      started += 1;
      await task(item);
    }
  };
  const laneCount = Math.max(1, Math.min(concurrency, items.length));
  const lanes: Promise<void>[] = [];
  for (let i = 0; i < laneCount; i++) {
    if (startBatch > 0 && i > 0 && i % startBatch === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    lanes.push(lane());
  }
  await Promise.all(lanes);
  return { started, skipped: items.length - started };
}
