/**
 * Teardown cost of `ws` (the WebSocket server under engine.io) in a mass disconnect.
 *
 * When a client's TCP connection ends, `ws` ends its frame Receiver (a Writable) on the socket's
 * 'end', and ends it again on the socket's 'close'. Node answers the second `end()` by building an
 * `ERR_STREAM_ALREADY_FINISHED` error, full stack trace included, and then drops it (no callback
 * was given). One per closing socket, so a mass disconnect spends a visible share of the hub's CPU
 * building errors nobody reads (figures: docs/performance.md, "Figures behind choices in the code").
 * The guard below makes a bare `end()` on an already ended Receiver return at once, which is
 * exactly what Node's `end()` does in that case, minus the error.
 */
import { createRequire } from 'node:module';
import { Writable } from 'node:stream';

type EndFn = (this: Writable, ...args: unknown[]) => Writable;

/** Writable.end, except that a bare end() of a stream already ending returns at once (same result, no error built). */
export function endUnlessEnded(this: Writable, ...args: unknown[]): Writable {
  if (args.length === 0 && this.writableEnded && this.writableCorked === 0) return this;
  return (Writable.prototype.end as EndFn).apply(this, args);
}

interface ReceiverClass {
  prototype: { end: EndFn };
}

let installed: ReceiverClass | undefined;

/**
 * Installs the guard on the Receiver of the very `ws` copy engine.io loads (resolved from
 * engine.io, so a second copy elsewhere in node_modules cannot be patched by mistake).
 * Idempotent; returns the patched class (undefined when `ws` does not look as expected: then
 * nothing is changed).
 */
export function installReceiverEndGuard(): ReceiverClass | undefined {
  if (installed) return installed;
  const fromEngine = createRequire(require.resolve('engine.io'));
  const ws = fromEngine('ws') as { Receiver?: ReceiverClass };
  const Receiver = ws.Receiver;
  // Only a Receiver that inherits Writable.end unchanged is patched (a future ws may do its own end()).
  if (!Receiver || Receiver.prototype.end !== Writable.prototype.end) return undefined;
  Receiver.prototype.end = endUnlessEnded;
  installed = Receiver;
  return installed;
}
