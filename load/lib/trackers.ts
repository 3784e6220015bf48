/**
 * Simulated tracker tabs (identity=session), as the OpenReplay Assist plugin connects them.
 *
 * A `TrackerFleet` lives in one worker process and holds its share of the tabs: tab indices
 * `t` in a requested range with `t % stride === offset`, so several workers split a ramp evenly
 * and no process exceeds its open-file limit.
 *
 * Each tab is a lean client (leanSocket.ts: the same bytes on the wire at a fraction of the CPU)
 * or, with `--generator socketio`, a full socket.io-client socket.
 */
import type { Socket } from 'socket.io-client';
import { runBounded } from './async';
import { openLeanSocket } from './leanSocket';
import { pageTitleOf, sessionInfoOf, tabIdentity, userAgentOf, type TabIdentity } from './population';
import { openSocket, type HubConnection } from './sockets';
import { ErrorCounts, LatencyHistogram, describeError, type HistogramJson } from './stats';

export interface TrackerConnectArgs {
  /** First tab index of the range (inclusive). */
  fromTab: number;
  /** End of the range (exclusive). */
  toTab: number;
  /** This worker connects the tabs with `index % stride === offset`. */
  stride: number;
  offset: number;
  /** Handshakes in flight at once in this worker. */
  concurrency: number;
  /** Handshakes started per turn of the worker's loop (0: all `concurrency` in one loop). */
  startBatch: number;
  connectTimeoutMs: number;
  /** No new handshake is started after this many ms; the rest is reported as skipped. */
  deadlineMs: number;
}

export interface TrackerConnectResult {
  attempted: number;
  connected: number;
  failed: number;
  skippedByDeadline: number;
  elapsedMs: number;
  /** Per-socket time from `io()` to the `connect` event. */
  connectLatency: HistogramJson;
  liveTabs: number;
}

export interface TrackerUpdateArgs {
  /** UPDATE_SESSION events per second emitted by this worker. */
  ratePerSecond: number;
  durationMs: number;
}

export interface TrackerUpdateResult {
  sent: number;
  elapsedMs: number;
}

export interface CloseResult {
  closed: number;
}

/** Which client library the bulk tabs and REST callers use (`--generator`). */
export type Generator = 'socketio' | 'lean';
export const GENERATORS: readonly Generator[] = ['lean', 'socketio'];

/** What the fleet does with a tab, whichever client holds it. */
interface TabClient {
  emit(event: string, data: unknown): void;
  /** A polite leave (Socket.IO DISCONNECT, close frame). */
  disconnect(): void;
  /** The TCP socket destroyed: no close frame, no DISCONNECT. */
  drop(): void;
}

interface LiveTab {
  tab: TabIdentity;
  socket: TabClient;
}

/** The TCP socket under a connected client (engine.io-client's `ws` transport in Node). */
function rawTcpSocket(socket: Socket): { destroy(): void } | undefined {
  const transport = socket.io.engine?.transport as unknown as { ws?: { _socket?: { destroy(): void } } } | undefined;
  return transport?.ws?._socket;
}

function socketIoTab(socket: Socket): TabClient {
  return {
    emit: (event, data) => socket.emit(event, data),
    disconnect: () => socket.disconnect(),
    drop: () => {
      const tcp = rawTcpSocket(socket);
      if (tcp !== undefined) tcp.destroy();
      else socket.disconnect();
    },
  };
}

/** Timer granularity of the update emitter: fine enough for a smooth rate, cheap enough. */
const UPDATE_TICK_MS = 10;

export class TrackerFleet {
  private readonly live = new Map<number, LiveTab>();
  /** `live` as an array for uniform random picks; rebuilt lazily after a tab drops. */
  private pickList: LiveTab[] = [];
  private pickListStale = false;
  private closing = false;

  constructor(
    private readonly hub: HubConnection,
    private readonly errors: ErrorCounts,
    private readonly generator: Generator = 'lean',
  ) {}

  get liveCount(): number {
    return this.live.size;
  }

  async connect(args: TrackerConnectArgs): Promise<TrackerConnectResult> {
    this.closing = false;
    const startedAt = performance.now();
    const tabIndices: number[] = [];
    for (let index = args.fromTab; index < args.toTab; index++) {
      if (index % args.stride === args.offset && !this.live.has(index)) tabIndices.push(index);
    }
    const connectLatency = new LatencyHistogram();
    let connected = 0;
    let failed = 0;
    const run = await runBounded(
      tabIndices,
      args.concurrency,
      startedAt + args.deadlineMs,
      async (tabIndex) => {
      const openedAt = performance.now();
      try {
        await this.connectTab(tabIndex, args.connectTimeoutMs);
        connectLatency.record(performance.now() - openedAt);
        connected += 1;
      } catch (error) {
        failed += 1;
        this.errors.add(`tracker.connect: ${describeError(error)}`);
      }
      },
      args.startBatch,
    );
    if (run.skipped > 0) this.errors.add('tracker.connect: not started before the phase deadline', run.skipped);
    return {
      attempted: run.started,
      connected,
      failed,
      skippedByDeadline: run.skipped,
      elapsedMs: performance.now() - startedAt,
      connectLatency: connectLatency.toJson(),
      liveTabs: this.live.size,
    };
  }

  /**
   * Emits UPDATE_SESSION from random live tabs at a steady rate. Each carries
   * `metadata.lastChange` = Date.now(), which dashboards turn into a diff latency.
   */
  async sendUpdates(args: TrackerUpdateArgs): Promise<TrackerUpdateResult> {
    const startedAt = performance.now();
    let sent = 0;
    let tick = 0;
    while (performance.now() - startedAt < args.durationMs) {
      const elapsedMs = performance.now() - startedAt;
      // Emit what is due by now, but never more than one second's worth at once: after a stall
      // (GC, busy loop) a catch-up burst would measure the burst, not the steady rate.
      const due = Math.min(Math.floor((elapsedMs / 1000) * args.ratePerSecond) - sent, Math.ceil(args.ratePerSecond));
      const candidates = this.currentPickList();
      for (let i = 0; i < due; i++) {
        if (candidates.length === 0) {
          this.errors.add('tracker.update: no live tab to update', due - i);
          sent += due - i;
          break;
        }
        const chosen = candidates[Math.floor(Math.random() * candidates.length)] as LiveTab;
        chosen.socket.emit('UPDATE_SESSION', {
          meta: { tabId: chosen.tab.tabId },
          data: {
            metadata: { lastChange: String(Date.now()) },
            pageTitle: pageTitleOf(chosen.tab.sessionIndex + ++tick),
          },
        });
        sent += 1;
      }
      await new Promise((resolve) => setTimeout(resolve, UPDATE_TICK_MS));
    }
    return { sent, elapsedMs: performance.now() - startedAt };
  }

  close(): CloseResult {
    this.closing = true;
    const closed = this.live.size;
    for (const { socket } of this.live.values()) socket.disconnect();
    this.live.clear();
    this.pickList = [];
    return { closed };
  }

  /**
   * Drops every tab abruptly, as a balancer failover or a network cut does: the TCP socket under
   * each client is destroyed with no WebSocket close frame and no Socket.IO disconnect packet.
   */
  drop(): CloseResult {
    this.closing = true;
    const closed = this.live.size;
    for (const { socket } of this.live.values()) socket.drop();
    this.live.clear();
    this.pickList = [];
    return { closed };
  }

  private async connectTab(tabIndex: number, timeoutMs: number): Promise<void> {
    const tab = tabIdentity(tabIndex, this.hub.population);
    const sessionInfo = sessionInfoOf(tab, tab.tabNumber, this.hub.population);
    const query = {
      peerId: tab.peerId,
      identity: 'session',
      tabId: tab.tabId,
      sessionInfo: JSON.stringify(sessionInfo),
    };
    const headers = { 'user-agent': userAgentOf(tab.sessionIndex) };
    let entry: LiveTab;
    // A drop the fleet did not ask for is an error to count (closing/dropping clears `live` first).
    const onDisconnect = (reason: string): void => {
      if (this.closing || this.live.get(tabIndex) !== entry) return;
      this.errors.add(`tracker.disconnect: ${reason}`);
      this.live.delete(tabIndex);
      this.pickListStale = true;
    };
    const onAlreadyConnected = (): void => this.errors.add('tracker: got SESSION_ALREADY_CONNECTED');
    if (this.generator === 'lean') {
      const socket = await openLeanSocket({
        url: this.hub.url,
        path: this.hub.socketPath,
        query,
        headers,
        timeoutMs,
        on: { SESSION_ALREADY_CONNECTED: onAlreadyConnected },
      });
      entry = { tab, socket };
      socket.onceDisconnected(onDisconnect);
    } else {
      const socket = await openSocket(this.hub, { namespace: '', query, headers, timeoutMs });
      entry = { tab, socket: socketIoTab(socket) };
      socket.on('SESSION_ALREADY_CONNECTED', onAlreadyConnected);
      socket.on('disconnect', onDisconnect);
    }
    this.live.set(tabIndex, entry);
    this.pickList.push(entry);
  }

  private currentPickList(): LiveTab[] {
    if (this.pickListStale) {
      this.pickList = [...this.live.values()];
      this.pickListStale = false;
    }
    return this.pickList;
  }
}
