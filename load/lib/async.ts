/** Small async helpers with bounded waiting: every wait in the bench has a limit. */

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/**
 * Waits until `promise` settles or `ms` have passed, whichever comes first. Unlike a race with
 * `sleep`, it leaves no timer behind when the promise wins: a pending timer keeps a process that
 * is otherwise done (a jest worker after the bench's tests) alive until it fires.
 */
export async function settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const elapsed = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, ms));
  });
  try {
    await Promise.race([promise.then(() => undefined, () => undefined), elapsed]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves with the promise's value, or rejects once `ms` have passed. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${Math.round(ms)} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
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
 */
export async function runBounded<T>(
  items: readonly T[],
  concurrency: number,
  deadlineAt: number,
  task: (item: T) => Promise<void>,
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
  const lanes = Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, lane);
  await Promise.all(lanes);
  return { started, skipped: items.length - started };
}
