/**
 * This node's replica of the cluster view: the session index plus every live tab claim
 * (tabClaims.ts). Every op, this node's own and the other nodes', reaches the index through here,
 * so every node settles same-tab races alike (nodeState.ts's pickClaim). No Redis: the store's
 * writer is told which rooms of this node's share changed, the live layer which of its sockets
 * lost a race.
 */
import type { Logger } from '../ops/logger';
import type { SessionData } from '../sessions/model';
import type { IndexOp } from '../sessions/ops';
import { type SessionIndex, findTab } from '../sessions/sessionIndex';
import type { ClusterMetrics } from './metrics';
import { type NodeShares, type RoomRef, type RoomShare, reconcileOps, roomField, shareOf, sharesOf } from './nodeState';
import { type HeldClaim, TabClaims } from './tabClaims';

/** A tab:up as it travels in the stream: with the socket it took over, if any. */
export type WireOp = IndexOp & { replaces?: string };

export interface ReplicaViewOptions {
  nodeId: string;
  index: SessionIndex;
  logger: Logger;
  metrics: Pick<ClusterMetrics, 'tabConflicts'>;
  /** This node's saved share of a room changed: it is written with the next batch. */
  onShareChanged: (ref: RoomRef) => void;
  /** A local tab lost a same-tabId race to another node's claim: refuse its socket (its leave publishes tab:down). */
  onTabLost?: (socketId: string) => void;
}

export class ReplicaView {
  private readonly nodeId: string;
  private readonly index: SessionIndex;
  /** Every live claim on every tab, this node's and the others'; the index holds each tab's winner. */
  private readonly claims = new TabClaims();
  /** Local sockets already handed to onTabLost (once each, until their claim goes). */
  private readonly refusing = new Set<string>();

  constructor(private readonly options: ReplicaViewOptions) {
    this.nodeId = options.nodeId;
    this.index = options.index;
  }

  /** Applies an op of this node's own sockets; returns it as it travels to the other nodes. */
  applyLocal(op: IndexOp): WireOp {
    if (op.type === 'tab:up') {
      const ref = { projectKey: op.projectKey, sessionId: op.sessionId };
      const held = findTab(this.index.room(op.projectKey, op.sessionId), op.tab.tabId);
      // The live layer lets a tab held by another node's socket in only when that node is stale (mayReplace).
      const replaces = held && held.socketId !== op.tab.socketId && held.nodeId !== this.nodeId ? held.socketId : undefined;
      const previous = this.claims.get(ref, op.tab.tabId, op.tab.socketId);
      const claim: HeldClaim = { ref, tab: op.tab, replaces: replaces ?? previous?.replaces, data: op.data ?? previous?.data };
      this.addClaim(claim);
      this.settle(ref, op.tab.tabId, op.data);
      return claim.replaces !== undefined ? { ...op, replaces: claim.replaces } : op;
    }
    if (op.type === 'tab:down') {
      this.dropClaim(op.projectKey, op.sessionId, op.tabId, op.socketId);
      this.settle(op, op.tabId);
    } else {
      this.index.apply(op);
    }
    return op;
  }

  /** Applies another node's op; tab ops go through the claims, so every node settles same-tab races alike. */
  applyRemote(op: WireOp): void {
    if (op.type === 'tab:up') {
      const ref = { projectKey: op.projectKey, sessionId: op.sessionId };
      const previous = this.claims.get(ref, op.tab.tabId, op.tab.socketId);
      const replaces = typeof op.replaces === 'string' ? op.replaces : previous?.replaces;
      this.addClaim({ ref, tab: op.tab, replaces, data: op.data ?? previous?.data });
      this.settle(ref, op.tab.tabId, op.data);
      return;
    }
    if (op.type === 'tab:down') {
      this.dropClaim(op.projectKey, op.sessionId, op.tabId, op.socketId);
      this.settle(op, op.tabId);
      return;
    }
    if (op.type === 'node:down') {
      this.dropNode(op.nodeId);
      return;
    }
    this.applyTracked(op);
  }

  /** Makes the claims and the index hold exactly `states` for the nodes `replaced` selects. */
  replaceStates(states: ReadonlyMap<string, NodeShares>, replaced: (nodeId: string) => boolean): void {
    // Claims that lost here are not in the index, so reconcileOps does not see them: drop those the states no longer list.
    const stale: IndexOp[] = [];
    for (const { tab, ref } of this.claims.all()) {
      if (!replaced(tab.nodeId)) continue;
      const listed = states
        .get(tab.nodeId)
        ?.get(roomField(ref.projectKey, ref.sessionId))
        ?.tabs.some((t) => t.tabId === tab.tabId && t.socketId === tab.socketId);
      if (!listed) stale.push({ type: 'tab:down', ...ref, tabId: tab.tabId, socketId: tab.socketId });
    }
    for (const op of stale) this.applyRemote(op);
    for (const op of reconcileOps(this.index, states, replaced)) this.applyRemote(op);
  }

  /** A node left or died: its claims go (others' claims on its tabs may win now), then its tabs and agents. */
  dropNode(nodeId: string): void {
    for (const { ref, tabId } of this.claims.dropNode(nodeId)) this.settle(ref, tabId);
    this.index.apply({ type: 'node:down', nodeId });
  }

  /** This node's saved share of one room: its agents, every tab it claims (lost races included), the room's data. */
  shareOf(ref: RoomRef): RoomShare | undefined {
    return shareOf(this.index.room(ref.projectKey, ref.sessionId), this.nodeId, this.claims.tabsOf(ref, this.nodeId));
  }

  /** This node's whole share, as a re-state writes it. */
  shares(): NodeShares {
    return sharesOf(this.index, this.nodeId, (ref) => this.claims.tabsOf(ref, this.nodeId));
  }

  private addClaim(claim: HeldClaim): void {
    if (this.claims.add(claim)) this.options.metrics.tabConflicts.inc();
  }

  private dropClaim(projectKey: string, sessionId: string, tabId: string, socketId: string): void {
    this.refusing.delete(socketId);
    this.claims.drop({ projectKey, sessionId }, tabId, socketId);
  }

  /**
   * Makes the index hold the winning claim of one tab (pickClaim), with `data` if an op brought
   * some, and refuses this node's sockets whose claims lost: their leave removes their claims
   * from every node.
   */
  private settle(where: RoomRef, tabId: string, data?: SessionData): void {
    // Only the ids: `where` may be a whole op, whose other fields must not leak into the ops built here.
    const ref: RoomRef = { projectKey: where.projectKey, sessionId: where.sessionId };
    const { winner, losers } = this.claims.decide(ref, tabId);
    const holder = findTab(this.index.room(ref.projectKey, ref.sessionId), tabId);
    const mine = (nodeId: string | undefined) => nodeId === this.nodeId;
    if (winner) {
      // The index keeps the newer of the room's data and this (a room left empty meanwhile has none).
      const withData = data ?? winner.data;
      this.applyTracked(withData ? { type: 'tab:up', ...ref, tab: winner.tab, data: withData } : { type: 'tab:up', ...ref, tab: winner.tab });
    } else {
      if (holder) this.applyTracked({ type: 'tab:down', ...ref, tabId, socketId: holder.socketId });
      if (data) this.applyTracked({ type: 'data', ...ref, data });
    }
    if (mine(holder?.nodeId) || mine(winner?.tab.nodeId)) this.options.onShareChanged(ref);
    const onTabLost = this.options.onTabLost;
    if (!onTabLost) return;
    for (const claim of losers) {
      if (!mine(claim.tab.nodeId) || this.refusing.has(claim.tab.socketId)) continue;
      const socketId = claim.tab.socketId;
      this.refusing.add(socketId);
      this.options.logger.warn({ tabId, winner: winner?.tab.nodeId }, 'the same tab is connected here and on another node: the other claim keeps it');
      // Not from inside the handler that published the claim: the socket is refused on the next tick.
      queueMicrotask(() => onTabLost(socketId));
    }
  }

  /**
   * Applies an op and keeps this node's saved share current: when another node changes the data
   * of a session this node has tabs in, this node's share carries the new data too, so whichever
   * share a joining node reads, it finds the newest data.
   */
  private applyTracked(op: IndexOp): void {
    if (op.type === 'node:down') {
      this.dropNode(op.nodeId);
      return;
    }
    const { dataChanged } = this.index.apply(op);
    if (dataChanged && this.claims.tabsOf(op, this.nodeId).length > 0) this.options.onShareChanged({ projectKey: op.projectKey, sessionId: op.sessionId });
  }
}
