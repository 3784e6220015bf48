/** Checks that narrow a value's type for the rest of a test, failing with what was missing. */

/** `value`, or a thrown error naming `what` when it is absent (an index miss in a test is a bug, not a default). */
export function defined<T>(value: T | null | undefined, what: string): T {
  if (value === undefined || value === null) throw new Error(`expected ${what}, got ${String(value)}`);
  return value;
}
