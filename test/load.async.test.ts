/**
 * The bench's bounded runner (load/lib/async.ts): how many tasks start before the event loop gets
 * a turn. A storm's tracker worker starts thousands of handshakes; started in one synchronous loop,
 * none of their sockets could write its request until all were started.
 */
import { orAfter, runBounded, settleWithin, withTimeout } from '../load/lib/async';

/** The loop turn (counted by a chain of immediates) in which each task started. */
async function startTurns(items: number, concurrency: number, startBatch: number): Promise<number[]> {
  let turn = 0;
  let ticking = true;
  const tick = (): void => {
    turn++;
    if (ticking) setImmediate(tick);
  };
  setImmediate(tick);
  const started: number[] = [];
  // No task ends before the last has started: a lane that finished early would take the next item
  // itself, and the start order would no longer say which batch started what.
  let releaseAll: () => void = () => undefined;
  const allStarted = new Promise<void>((resolve) => {
    releaseAll = resolve;
  });
  try {
    await runBounded(
      Array.from({ length: items }, (_, i) => i),
      concurrency,
      Number.POSITIVE_INFINITY,
      async () => {
        started.push(turn);
        if (started.length === items) releaseAll();
        await allStarted;
      },
      startBatch,
    );
  } finally {
    ticking = false;
  }
  return started;
}

describe('runBounded', () => {
  it('starts every lane in one synchronous loop when startBatch is 0', async () => {
    const turns = await startTurns(10, 10, 0);
    expect(turns).toHaveLength(10);
    expect(new Set(turns).size).toBe(1);
  });

  it('starts lanes startBatch at a time, with a loop turn between batches', async () => {
    const turns = await startTurns(10, 10, 4);
    expect(turns).toHaveLength(10);
    const firstTurns = [turns[0], turns[4], turns[8]] as number[];
    // Batches of 4, 4 and 2, each in a later turn than the one before.
    expect(turns.slice(0, 4).every((t) => t === firstTurns[0])).toBe(true);
    expect(turns.slice(4, 8).every((t) => t === firstTurns[1])).toBe(true);
    expect(turns.slice(8).every((t) => t === firstTurns[2])).toBe(true);
    expect(firstTurns[1]).toBeGreaterThan(firstTurns[0] as number);
    expect(firstTurns[2]).toBeGreaterThan(firstTurns[1] as number);
  });

  it('still runs every item with at most `concurrency` in flight', async () => {
    let inFlight = 0;
    let most = 0;
    const done: number[] = [];
    const result = await runBounded(
      Array.from({ length: 25 }, (_, i) => i),
      6,
      Number.POSITIVE_INFINITY,
      async (item) => {
        inFlight++;
        most = Math.max(most, inFlight);
        await new Promise<void>((resolve) => setImmediate(resolve));
        inFlight--;
        done.push(item);
      },
      4,
    );
    expect(result).toEqual({ started: 25, skipped: 0 });
    expect(done.sort((a, b) => a - b)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    expect(most).toBe(6);
  });
});

describe('orAfter and the waits built on it', () => {
  const timers = () => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;

  it('gives the promise its value and leaves no timer behind when the promise wins', async () => {
    const before = timers();
    expect(await orAfter(Promise.resolve('value'), 60_000, 'late')).toBe('value');
    await settleWithin(Promise.reject(new Error('ignored')), 60_000);
    expect(await withTimeout(Promise.resolve(7), 60_000, 'seven')).toBe(7);
    expect(timers()).toBe(before);
  });

  it('gives the fallback, or the timeout error, once the time is up', async () => {
    const never = new Promise<never>(() => undefined);
    expect(await orAfter(never, 5, 'late')).toBe('late');
    await expect(settleWithin(never, 5)).resolves.toBeUndefined();
    await expect(withTimeout(never, 5, 'the answer')).rejects.toThrow('the answer: no answer within 5 ms');
  });
});
