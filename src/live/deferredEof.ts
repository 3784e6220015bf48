/**
 * A socket's end of stream, read by libuv in the poll phase, handled in a later turn.
 *
 * When thousands of peers close at once, libuv reads every end of stream in one poll phase (up to
 * 48 × 1,024 ready sockets before it runs anything else) and Node handles each there: its read
 * callback pushes the end into the socket's Readable, which queues a tick to emit 'end', which the
 * callback's scope runs before the next socket's read. Queuing the 'end' event itself (see
 * lifecyclePacing.ts) comes too late: the Readable's work has been paid in the poll phase already.
 * Here the read callback of a socket's handle queues the whole end-of-stream handling instead (an
 * error read, such as a reset, likewise: Node builds an error with its stack trace for it), so the
 * poll phase pays only libuv's read and one call per socket (figures: docs/performance.md).
 *
 * Node internals used, checked once (`deferEnds` returns undefined when they do not look as
 * expected, and then nothing is changed): a net socket's handle calls its `onread` with the read's
 * byte count (or error) in `streamBaseState[kReadBytesOrError]`, a typed array shared by every
 * stream, and keeps its socket under an `owner_symbol` property. Data reads go through unchanged.
 */
import type { Duplex } from 'node:stream';
import { types } from 'node:util';

interface StreamBaseState {
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
}

interface ReadingHandle {
  onread: (this: ReadingHandle, arrayBuffer?: ArrayBuffer) => unknown;
  [owner: symbol]: unknown;
}

/** What a socket's handle looks like from here: its read callback, under the socket's `_handle`. */
interface HandleOwner {
  _handle?: ReadingHandle | null;
  destroyed: boolean;
}

export interface DeferredEnds {
  /** Makes `socket`'s end of stream (or read error) wait for `queue`; false when `socket` has no handle of the known shape. */
  install(socket: Duplex): boolean;
  /** Reads with data of the sockets installed so far (the loop-stall trace reads it). */
  readonly dataReads: number;
  /** Whether `socket`'s end was read here and handled from the queue (its 'end' then comes from a queued job already). */
  wasQueued(socket: Duplex): boolean;
}

function readState(): StreamBaseState | undefined {
  try {
    const binding = (process as unknown as { binding(name: string): Partial<StreamBaseState> }).binding('stream_wrap');
    // Not instanceof: Node's typed array may come from another realm than this module's globals (jest's).
    if (types.isInt32Array(binding.streamBaseState) && typeof binding.kReadBytesOrError === 'number') {
      return { streamBaseState: binding.streamBaseState, kReadBytesOrError: binding.kReadBytesOrError };
    }
  } catch {
    // A Node without process.binding or this binding: the ends are handled where Node reads them.
  }
  return undefined;
}

const state = readState();

/**
 * One read callback for every socket (no closure per socket), calling Node's own for data and, for
 * an end or an error, queuing the call with the byte count it would have read. `queue` runs the
 * job in a later turn; `onEnd` is told each socket whose end (or error) was queued.
 */
export function deferEnds(queue: (job: () => void) => void, onEnd: () => void): DeferredEnds | undefined {
  if (!state) return undefined;
  const { streamBaseState, kReadBytesOrError } = state;
  let nodeOnread: ReadingHandle['onread'] | undefined;
  let ownerSymbol: symbol | undefined;
  /** Handles whose end is queued: libuv stops reading at an end, but a second one must not queue twice. */
  const queued = new WeakSet<ReadingHandle>();
  let dataReads = 0;

  function deferredOnread(this: ReadingHandle, arrayBuffer?: ArrayBuffer): unknown {
    const nread = streamBaseState[kReadBytesOrError] ?? 0;
    // Set before any handle gets this callback.
    const onread = nodeOnread as ReadingHandle['onread'];
    if (nread >= 0) {
      dataReads++;
      return onread.call(this, arrayBuffer);
    }
    if (queued.has(this)) return undefined;
    queued.add(this);
    onEnd();
    queue(() => {
      // Destroyed while it waited (the hub closed it): Node would have nothing left to do either.
      if ((this[ownerSymbol as symbol] as HandleOwner | undefined)?.destroyed !== false) return;
      streamBaseState[kReadBytesOrError] = nread;
      onread.call(this);
    });
    return undefined;
  }

  return {
    get dataReads() {
      return dataReads;
    },
    install(socket) {
      const handle = (socket as unknown as HandleOwner)._handle;
      if (!handle || typeof handle.onread !== 'function' || handle.onread === deferredOnread) return false;
      if (!nodeOnread) {
        ownerSymbol = Object.getOwnPropertySymbols(handle).find((key) => handle[key] === socket);
        if (!ownerSymbol) return false;
        nodeOnread = handle.onread;
      }
      // Only Node's own read callback is replaced (a socket wrapped by something else keeps its own).
      if (handle.onread !== nodeOnread || handle[ownerSymbol as symbol] !== socket) return false;
      handle.onread = deferredOnread;
      return true;
    },
    wasQueued(socket) {
      const handle = (socket as unknown as HandleOwner)._handle;
      return handle ? queued.has(handle) : false;
    },
  };
}
