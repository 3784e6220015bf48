/**
 * Every live claim on every tab, this node's and the others' (the Redis store's same-tab races,
 * see docs/cluster.md): which sockets claim a tab, which claim wins (nodeState.ts's pickClaim),
 * which lost, and which claims a node holds in a room (its saved share lists them all, the losing
 * ones included, so a node that loads the view later still knows them). No I/O: the store feeds it
 * ops and acts on what it answers.
 */
import type { SessionData, TabState } from '../sessions/model';
import { type RoomRef, type TabClaim, pickClaim, roomField } from './nodeState';

/** A claim and the room it is in. */
export interface HeldClaim extends TabClaim {
  ref: RoomRef;
  /** The newest session data that came with this claim: a claim that wins after its room emptied brings it back. */
  data?: SessionData;
}

/** One room's claims: tab id -> socket id -> claim. */
type RoomClaims = Map<string, Map<string, HeldClaim>>;

export class TabClaims {
  /** room field -> tab id -> socket id -> claim; a tab (a room) with no claim left has no entry. */
  private readonly byRoom = new Map<string, RoomClaims>();

  /** The claim of `socketId` on a tab, if it holds one. */
  get(ref: RoomRef, tabId: string, socketId: string): HeldClaim | undefined {
    return this.byRoom.get(roomField(ref.projectKey, ref.sessionId))?.get(tabId)?.get(socketId);
  }

  /** Adds (or updates) a claim; true when it is a new socket on a tab another node claims (a conflict). */
  add(claim: HeldClaim): boolean {
    const field = roomField(claim.ref.projectKey, claim.ref.sessionId);
    let room = this.byRoom.get(field);
    if (!room) this.byRoom.set(field, (room = new Map()));
    let set = room.get(claim.tab.tabId);
    if (!set) room.set(claim.tab.tabId, (set = new Map()));
    const conflict = !set.has(claim.tab.socketId) && [...set.values()].some((c) => c.tab.nodeId !== claim.tab.nodeId);
    set.set(claim.tab.socketId, claim);
    return conflict;
  }

  drop(ref: RoomRef, tabId: string, socketId: string): void {
    const field = roomField(ref.projectKey, ref.sessionId);
    const room = this.byRoom.get(field);
    const set = room?.get(tabId);
    if (!room || !set) return;
    set.delete(socketId);
    if (set.size === 0) room.delete(tabId);
    if (room.size === 0) this.byRoom.delete(field);
  }

  /** Drops every claim of `nodeId`; returns the tabs they were on (others' claims may win there now). */
  dropNode(nodeId: string): { ref: RoomRef; tabId: string }[] {
    const affected: { ref: RoomRef; tabId: string }[] = [];
    for (const [field, room] of this.byRoom) {
      for (const [tabId, set] of room) {
        for (const claim of [...set.values()]) {
          if (claim.tab.nodeId !== nodeId) continue;
          set.delete(claim.tab.socketId);
          affected.push({ ref: claim.ref, tabId });
        }
        if (set.size === 0) room.delete(tabId);
      }
      if (room.size === 0) this.byRoom.delete(field);
    }
    return affected;
  }

  /** The tab's winning claim and the claims that lost (none of either when the tab has no claim). */
  decide(ref: RoomRef, tabId: string): { winner: HeldClaim | undefined; losers: HeldClaim[] } {
    const set = this.byRoom.get(roomField(ref.projectKey, ref.sessionId))?.get(tabId);
    if (!set) return { winner: undefined, losers: [] };
    const winner = pickClaim(set.values());
    return { winner, losers: [...set.values()].filter((c) => c !== winner) };
  }

  /** The tabs `nodeId` claims in a room, winning or not: what its saved share lists. */
  tabsOf(ref: RoomRef, nodeId: string): TabState[] {
    const tabs: TabState[] = [];
    for (const set of this.byRoom.get(roomField(ref.projectKey, ref.sessionId))?.values() ?? []) {
      for (const claim of set.values()) if (claim.tab.nodeId === nodeId) tabs.push(claim.tab);
    }
    return tabs;
  }

  /** Every claim (a snapshot: the caller may add or drop while iterating it). */
  all(): HeldClaim[] {
    const all: HeldClaim[] = [];
    for (const room of this.byRoom.values()) for (const set of room.values()) all.push(...set.values());
    return all;
  }
}
