/**
 * Time in the tests: the one poller (`eventually`) and the one factor every wait and time bound is
 * scaled by. Tests assert what happens, not how fast: a bound here is how long a test waits before
 * it calls a thing missing, and `TEST_TIME_FACTOR` (default 1) stretches them all on a slow or
 * shared machine (README, "The two commands"). Speed is measured in load/, never here.
 */

import { orAfter as orAfterMs } from '../../load/lib/async';

function factorOf(raw: string | undefined): number {
  if (raw === undefined || raw === '') return 1;
  const factor = Number(raw);
  if (!Number.isFinite(factor) || factor < 1) throw new Error(`TEST_TIME_FACTOR must be a number >= 1, got ${JSON.stringify(raw)}`);
  return factor;
}

/** How much longer than on an idle machine the tests give anything to happen. */
export const TIME_FACTOR = factorOf(process.env.TEST_TIME_FACTOR);

/** `ms` stretched by `TEST_TIME_FACTOR`. */
export function scaled(ms: number): number {
  return Math.round(ms * TIME_FACTOR);
}

/** Waits `ms` (scaled): only where a test must let time pass (a window, a TTL), never to "let things settle". */
export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, scaled(ms)));
}

/** `promise`'s value, or `timedOut` once `ms` (scaled) have passed; the timer goes when the promise wins. */
export function orAfter<T, U>(promise: Promise<T>, ms: number, timedOut: U): Promise<T | U> {
  return orAfterMs(promise, scaled(ms), timedOut);
}

/** The check's own source, on one line: what `eventually` was waiting for. */
function sourceOf(check: () => unknown): string {
  const text = String(check).replace(/\s+/g, ' ').replace(/^(async )?\(\) => /, '');
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/**
 * Polls `check` every `everyMs` until it holds, and resolves with how long that took. After
 * `timeoutMs` (scaled) it rejects with what it awaited (the check's source) and `describe()`, asked
 * right after the last failed check: the last value seen.
 */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  describe: () => string | Promise<string> = () => '(no description)',
  timeoutMs = 5000,
  everyMs = 10,
): Promise<number> {
  const limit = scaled(timeoutMs);
  const start = Date.now();
  for (;;) {
    if (await check()) return Date.now() - start;
    if (Date.now() - start > limit) {
      throw new Error(`not reached within ${limit} ms: ${sourceOf(check)}\nlast seen: ${await describe()}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
