/**
 * Every live claim on every tab, this node's and the others' (the Redis store's same-tab races,
 * see docs/cluster.md): which sockets claim a tab, which claim wins (nodeState.ts's pickClaim),
 * which lost. No I/O: the store (redisStore.ts) feeds it ops and acts on what it answers.
 */
import type { SessionData } from '../sessions/model';
import { type RoomRef, type TabClaim, pickClaim, tabKey } from './nodeState';

/** A claim and the room it is in. */
export interface HeldClaim extends TabClaim {
  ref: RoomRef;
  /** The newest session data that came with this claim: a claim that wins after its room emptied brings it back. */
  data?: SessionData;
}

export class TabClaims {
  /** tab key -> socket id -> claim; a tab with no claim left has no entry. */
  private readonly byTab = new Map<string, Map<string, HeldClaim>>();

  /** The claim of `socketId` on a tab, if it holds one. */
  get(ref: RoomRef, tabId: string, socketId: string): HeldClaim | undefined {
    return this.byTab.get(tabKey(ref.projectKey, ref.sessionId, tabId))?.get(socketId);
  }

  /** Adds (or updates) a claim; true when it is a new socket on a tab another node claims (a conflict). */
  add(claim: HeldClaim): boolean {
    const key = tabKey(claim.ref.projectKey, claim.ref.sessionId, claim.tab.tabId);
    let set = this.byTab.get(key);
    if (!set) this.byTab.set(key, (set = new Map()));
    const conflict = !set.has(claim.tab.socketId) && [...set.values()].some((c) => c.tab.nodeId !== claim.tab.nodeId);
    set.set(claim.tab.socketId, claim);
    return conflict;
  }

  drop(ref: RoomRef, tabId: string, socketId: string): void {
    const key = tabKey(ref.projectKey, ref.sessionId, tabId);
    const set = this.byTab.get(key);
    if (!set) return;
    set.delete(socketId);
    if (set.size === 0) this.byTab.delete(key);
  }

  /** Drops every claim of `nodeId`; returns the tabs they were on (others' claims may win there now). */
  dropNode(nodeId: string): { ref: RoomRef; tabId: string }[] {
    const affected: { ref: RoomRef; tabId: string }[] = [];
    for (const [key, set] of this.byTab) {
      for (const claim of [...set.values()]) {
        if (claim.tab.nodeId !== nodeId) continue;
        set.delete(claim.tab.socketId);
        affected.push({ ref: claim.ref, tabId: claim.tab.tabId });
      }
      if (set.size === 0) this.byTab.delete(key);
    }
    return affected;
  }

  /** The tab's winning claim and the claims that lost (none of either when the tab has no claim). */
  decide(ref: RoomRef, tabId: string): { winner: HeldClaim | undefined; losers: HeldClaim[] } {
    const set = this.byTab.get(tabKey(ref.projectKey, ref.sessionId, tabId));
    if (!set) return { winner: undefined, losers: [] };
    const winner = pickClaim(set.values());
    return { winner, losers: [...set.values()].filter((c) => c !== winner) };
  }

  /** Every claim (a snapshot: the caller may add or drop while iterating it). */
  all(): HeldClaim[] {
    return [...this.byTab.values()].flatMap((set) => [...set.values()]);
  }
}
