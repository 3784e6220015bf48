/**
 * The Redis store's life, written down (the diagram is in docs/cluster.md). The store holds one
 * phase and changes it only through `nextPhase`; what /ready and REST's partial marker say is
 * `phaseStatus` of it. Pure: no timers, no Redis.
 *
 * Whether Redis is reachable is not a phase: the clients reconnect by themselves and the store
 * reads their state (`connected`); losing a connection is a `resyncNeeded` like a gap.
 */
import type { StoreStatus } from './store';

export type StorePhase =
  /** Started, the whole view not loaded yet: not ready (handshakes refused). */
  | 'joining'
  /** The view is complete and being kept up to date by the stream. */
  | 'live'
  /** A reload of the view is owed or running (gap, lost connection, eviction, expiry, backlog, after a stall). */
  | 'resyncing'
  /** Redis stopped answering the health ping (frozen, stalled host): serving the last known view. */
  | 'stalled'
  /** Leaving the cluster (a joined node's close): handing off, then closing the connections. */
  | 'leaving'
  /** Out of the cluster: nothing more is written, read or applied. */
  | 'closed';

export type PhaseEvent =
  /** A recovery re-stated this node and loaded every node's share: the view is whole. */
  | 'loaded'
  /** Something makes the view doubtful: a reload is owed (the reason goes to the resyncs metric). */
  | 'resyncNeeded'
  /** The health ping went unanswered for CLUSTER_STALL_MS. */
  | 'stallSeen'
  /** The first answer after a stall: whatever was in flight may have failed on one side only. */
  | 'stallOver'
  /** close() was called. */
  | 'close'
  /** The leave finished (hand-off done or given up, connections closed). */
  | 'left';

export type PhaseStep = { phase: StorePhase } | { refused: string };

const to = (phase: StorePhase): PhaseStep => ({ phase });
const refused = (why: string): PhaseStep => ({ refused: why });

/** The phase after `event`, or why the event means nothing in `phase` (the phase then stays). */
export function nextPhase(phase: StorePhase, event: PhaseEvent): PhaseStep {
  switch (phase) {
    case 'joining':
      switch (event) {
        case 'loaded':
          return to('live');
        // The join's own recovery covers any reload asked for meanwhile; a stall only delays it.
        case 'resyncNeeded':
        case 'stallSeen':
        case 'stallOver':
          return to('joining');
        // Never ready, and never will be: out at once (its leave still hands off what a re-state may have written).
        case 'close':
          return to('closed');
        case 'left':
          return refused('not leaving');
      }
      break;
    case 'live':
    case 'resyncing':
      switch (event) {
        case 'loaded':
          return phase === 'resyncing' ? to('live') : refused('no reload was owed');
        case 'resyncNeeded':
        // A stall seen while joining ends after the join: reload as after any stall.
        case 'stallOver':
          return to('resyncing');
        case 'stallSeen':
          return to('stalled');
        case 'close':
          return to('leaving');
        case 'left':
          return refused('not leaving');
      }
      break;
    case 'stalled':
      switch (event) {
        // A reload that got through, or one asked for, changes nothing until Redis answers the ping again.
        case 'loaded':
        case 'resyncNeeded':
          return to('stalled');
        case 'stallSeen':
          return refused('already stalled');
        case 'stallOver':
          return to('resyncing');
        case 'close':
          return to('leaving');
        case 'left':
          return refused('not leaving');
      }
      break;
    case 'leaving':
      return event === 'left' ? to('closed') : refused('leaving the cluster');
    case 'closed':
      return refused('closed');
  }
  return refused(`unknown event ${String(event)}`);
}

/** Leaving or gone: nothing is written, read or reloaded any more. */
export function isClosing(phase: StorePhase): boolean {
  return phase === 'leaving' || phase === 'closed';
}

/** The view holds every node's share (it may be stale while Redis is away or stalled). */
export function hasJoined(phase: StorePhase): boolean {
  return phase === 'live' || phase === 'resyncing' || phase === 'stalled' || phase === 'leaving';
}

export interface StatusFacts {
  /** Both store connections are up. */
  connected: boolean;
  /** How long Redis has not answered, while stalled. */
  stalledForMs: number;
}

const UNREACHABLE: StoreStatus = { ready: true, partial: true, reason: 'Redis is unreachable: serving the last known view of other nodes' };

/** What /ready answers (and whether REST marks answers partial) in `phase`. */
export function phaseStatus(phase: StorePhase, facts: StatusFacts): StoreStatus {
  switch (phase) {
    case 'joining':
      return { ready: false, partial: true, reason: facts.connected ? 'joining the cluster: loading the view' : 'joining the cluster: Redis is unreachable' };
    case 'live':
      return facts.connected ? { ready: true, partial: false } : UNREACHABLE;
    case 'resyncing':
      return facts.connected ? { ready: true, partial: true, reason: 'resynchronising the cluster view' } : UNREACHABLE;
    case 'stalled':
      return facts.connected ? { ready: true, partial: true, reason: `Redis is not answering (for ${facts.stalledForMs} ms): serving the last known view of other nodes` } : UNREACHABLE;
    case 'leaving':
      return { ready: true, partial: true, reason: 'leaving the cluster' };
    case 'closed':
      return { ready: false, partial: true, reason: 'left the cluster' };
  }
}
