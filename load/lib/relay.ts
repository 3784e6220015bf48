/**
 * Agent <-> tab relay round trips.
 *
 * Each pair is its own session: one tracker tab and one agent, both in THIS worker process, so
 * the round trip is timed with one monotonic clock (process.hrtime) and no generator process
 * other than this (otherwise idle) one sits on the path:
 *
 *   agent --ping_relay {meta:{tabId}, data:{t}}--> hub --(agentSocketId, payload)--> tab
 *   tab --pong_relay payload--> hub --payload--> agent        (rtt = now - t)
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Socket } from 'socket.io-client';
import { runBounded, sleep } from './async';
import { isRecord } from './http';
import { signHs256 } from './jwt';
import { RELAY_SESSION_INDEX_BASE, sessionInfoOf, tabOfSession, userAgentOf, type TabIdentity } from './population';
import { openSocket, type HubConnection } from './sockets';
import { ErrorCounts, LatencyHistogram, describeError, type HistogramJson } from './stats';

export const PING_EVENT = 'ping_relay';
export const PONG_EVENT = 'pong_relay';

export interface RelayConnectArgs {
  pairs: number;
  /** Offset added to the relay session indices, so each step uses fresh sessions. */
  sessionOffset: number;
  connectTimeoutMs: number;
  /** Where the agents connect, when not to the worker's hub (cluster3: tab on one node, agent on another). */
  agentUrl?: string;
}

export interface RelayConnectResult {
  connectedPairs: number;
  failedPairs: number;
}

export interface RelayRunArgs {
  durationMs: number;
  /** Pause between a pong and the next ping of the same pair. */
  pauseMs: number;
  replyTimeoutMs: number;
  /** Padding carried by every ping and echoed by its pong (0 = none). */
  payloadBytes?: number;
}

export interface RelayRunResult {
  sent: number;
  answered: number;
  timedOut: number;
  elapsedMs: number;
  roundTrip: HistogramJson;
  /**
   * This worker's own event-loop delay during the run (ms beyond the monitor's 10 ms interval): a
   * pong read late here lengthens a round trip as much as a late hub does.
   */
  loopDelay: { p99Ms: number; maxMs: number };
}

/** The sampling interval of the worker's loop-delay monitor (ms). */
const LOOP_DELAY_RESOLUTION_MS = 10;

/** A loop-delay figure (ns, as perf_hooks records the whole interval) as the delay beyond the interval (ms). */
export function delayBeyondInterval(ns: number, intervalMs: number): number {
  return Math.max(0, ns / 1e6 - intervalMs);
}

interface RelayPair {
  tab: TabIdentity;
  tabSocket: Socket;
  agentSocket: Socket;
  /** Ping timestamp (hrtime ns, as sent) -> resolver of the matching pong. */
  pending: Map<string, () => void>;
}

export class RelayPairs {
  private pairs: RelayPair[] = [];
  private closing = false;

  constructor(
    private readonly hub: HubConnection,
    private readonly errors: ErrorCounts,
  ) {}

  async connect(args: RelayConnectArgs): Promise<RelayConnectResult> {
    this.closing = false;
    const indices = Array.from({ length: args.pairs }, (_, i) => RELAY_SESSION_INDEX_BASE + args.sessionOffset + i);
    await runBounded(indices, 16, performance.now() + args.connectTimeoutMs * 3, async (sessionIndex) => {
      try {
        this.pairs.push(await this.connectPair(sessionIndex, args.connectTimeoutMs, args.agentUrl));
      } catch (error) {
        this.errors.add(`relay.connect: ${describeError(error)}`);
      }
    });
    return { connectedPairs: this.pairs.length, failedPairs: args.pairs - this.pairs.length };
  }

  async run(args: RelayRunArgs): Promise<RelayRunResult> {
    const roundTrip = new LatencyHistogram();
    const loopDelay = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
    loopDelay.enable();
    const startedAt = performance.now();
    const endAt = startedAt + args.durationMs;
    let sent = 0;
    let answered = 0;
    let timedOut = 0;
    const pad = 'x'.repeat(args.payloadBytes ?? 0);

    // Pairs stand for independent agents: each starts at its own moment within one pause and waits
    // 0.5-1.5 pauses (the same mean rate) between pings. Started together with a fixed pause, 200
    // pairs stayed in step and pinged in bursts of 200, and the round trip's tail measured the
    // generator serialising each burst (docs/performance.md, round 2).
    const jittered = (): number => args.pauseMs * (0.5 + Math.random());
    const loop = async (pair: RelayPair): Promise<void> => {
      await sleep(Math.random() * args.pauseMs);
      while (performance.now() < endAt) {
        const sentAt = process.hrtime.bigint();
        const stamp = sentAt.toString();
        const answer = new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => {
            pair.pending.delete(stamp);
            resolve(false);
          }, args.replyTimeoutMs);
          pair.pending.set(stamp, () => {
            clearTimeout(timer);
            pair.pending.delete(stamp);
            resolve(true);
          });
        });
        pair.agentSocket.emit(PING_EVENT, { meta: { tabId: pair.tab.tabId }, data: pad === '' ? { t: stamp } : { t: stamp, pad } });
        sent += 1;
        if (await answer) {
          roundTrip.record(Number(process.hrtime.bigint() - sentAt) / 1e6);
          answered += 1;
        } else {
          timedOut += 1;
          this.errors.add(`relay: no pong within ${args.replyTimeoutMs} ms`);
        }
        await sleep(jittered());
      }
    };

    await Promise.all(this.pairs.map(loop));
    loopDelay.disable();
    return {
      sent,
      answered,
      timedOut,
      elapsedMs: performance.now() - startedAt,
      roundTrip: roundTrip.toJson(),
      loopDelay: {
        p99Ms: delayBeyondInterval(loopDelay.percentile(99), LOOP_DELAY_RESOLUTION_MS),
        maxMs: delayBeyondInterval(loopDelay.max, LOOP_DELAY_RESOLUTION_MS),
      },
    };
  }

  close(): { closed: number } {
    this.closing = true;
    const closed = this.pairs.length;
    // Agents first: a tab leaving before its agent makes the hub tell the agent SESSION_DISCONNECTED.
    for (const pair of this.pairs) pair.agentSocket.disconnect();
    for (const pair of this.pairs) pair.tabSocket.disconnect();
    this.pairs = [];
    return { closed };
  }

  private async connectPair(sessionIndex: number, timeoutMs: number, agentUrl: string | undefined): Promise<RelayPair> {
    const tab = tabOfSession(sessionIndex, 0, this.hub.population);
    const tabSocket = await openSocket(this.hub, {
      namespace: '',
      query: {
        peerId: tab.peerId,
        identity: 'session',
        tabId: tab.tabId,
        sessionInfo: JSON.stringify(sessionInfoOf(tab, 0, this.hub.population)),
      },
      headers: { 'user-agent': userAgentOf(sessionIndex) },
      timeoutMs,
    });
    // The tab echoes every ping back; the hub hands agent events to tabs as (agentSocketId, payload).
    tabSocket.on(PING_EVENT, (...received: unknown[]) => {
      if (typeof received[0] !== 'string') {
        this.errors.add('relay.tab: agent event not delivered as (agentSocketId, payload)');
      }
      const payload = received.find(isRecord);
      if (payload === undefined) {
        this.errors.add('relay.tab: ping without a payload object');
        return;
      }
      tabSocket.emit(PONG_EVENT, payload);
    });

    // An agent on another node is told SESSION_DISCONNECTED if that node has not yet replicated
    // the tab's session (a few ms): give it the time.
    if (agentUrl !== undefined && agentUrl !== this.hub.url) await sleep(250);
    const agentId = sessionIndex - RELAY_SESSION_INDEX_BASE + 1;
    let agentSocket: Socket;
    try {
      agentSocket = await openSocket(agentUrl === undefined ? this.hub : { ...this.hub, url: agentUrl }, {
        namespace: '',
        query: {
          peerId: tab.roomId,
          identity: 'agent',
          agentInfo: JSON.stringify({ id: agentId, name: `Bench Agent ${agentId}`, email: `agent${agentId}@bench.local` }),
          config: JSON.stringify({ iceServers: [] }),
          projectId: '1',
        },
        auth: { token: signHs256({ projectKey: tab.projectKey, sessionId: tab.sessionId }, this.hub.jwtSecret) },
        timeoutMs,
      });
    } catch (error) {
      tabSocket.disconnect();
      throw error;
    }

    const pair: RelayPair = { tab, tabSocket, agentSocket, pending: new Map() };
    agentSocket.on(PONG_EVENT, (payload: unknown) => {
      const stamp = isRecord(payload) && isRecord(payload.data) ? payload.data.t : undefined;
      const resolve = typeof stamp === 'string' ? pair.pending.get(stamp) : undefined;
      if (resolve !== undefined) resolve();
      else this.errors.add('relay.agent: pong that matches no pending ping (late or malformed)');
    });
    agentSocket.on('SESSION_DISCONNECTED', () => {
      if (!this.closing) this.errors.add('relay.agent: got SESSION_DISCONNECTED');
    });
    for (const [role, socket] of [['tab', tabSocket], ['agent', agentSocket]] as const) {
      socket.on('disconnect', (reason: string) => {
        if (!this.closing) this.errors.add(`relay.${role}.disconnect: ${reason}`);
      });
    }
    return pair;
  }
}
