/**
 * A node's share of the cluster view, and the pure rules that merge shares into an index.
 *
 * A share is, per session room, what one node holds there: its tabs, its agents and, while it has
 * tabs there, the session data it knows. Each node keeps its share in Redis (one hash field per
 * room) and in state stream entries; any node can rebuild the whole view from every node's share.
 *
 * No I/O here: the Redis store (redisStore.ts) moves shares and ops around, these functions decide
 * what they mean for the index.
 */
import type { AgentState, SessionData, TabState } from '../sessions/model';
import type { IndexOp } from '../sessions/ops';
import type { Room, SessionIndex } from '../sessions/sessionIndex';

export interface RoomShare {
  data?: SessionData;
  tabs: TabState[];
  agents: AgentState[];
}

/** A node's whole share: room field (see `roomField`) -> what the node holds in that room. */
export type NodeShares = Map<string, RoomShare>;

export interface RoomRef {
  projectKey: string;
  sessionId: string;
}

/** The hash field of a room: unambiguous whatever characters the ids hold. */
export function roomField(projectKey: string, sessionId: string): string {
  return JSON.stringify([projectKey, sessionId]);
}

export function parseRoomField(field: string): RoomRef | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(field);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed) || parsed.length !== 2) return undefined;
  const [projectKey, sessionId] = parsed as unknown[];
  return typeof projectKey === 'string' && typeof sessionId === 'string' ? { projectKey, sessionId } : undefined;
}

/**
 * What `nodeId` holds in `room`; undefined when nothing. Its tabs are the ones the index holds, or
 * `claimed`: every tab the node claims there, also those whose claim lost a same-tab race (the
 * store passes its claims, so a node that loads this share later still knows them).
 */
export function shareOf(room: Room | undefined, nodeId: string, claimed?: readonly TabState[]): RoomShare | undefined {
  if (!room) return undefined;
  const tabs: TabState[] = claimed ? [...claimed] : room.tabs.filter((tab) => tab.nodeId === nodeId);
  const agents: AgentState[] = [];
  for (const agent of room.agents.values()) if (agent.nodeId === nodeId) agents.push(agent);
  if (tabs.length === 0 && agents.length === 0) return undefined;
  // Data only travels with tabs: a room with agents only has no session view to describe.
  return tabs.length > 0 && room.data ? { data: room.data, tabs, agents } : { tabs, agents };
}

/** Every room share of `nodeId` in the index; `claimed` as in shareOf, per room. */
export function sharesOf(index: SessionIndex, nodeId: string, claimed?: (room: RoomRef) => readonly TabState[]): NodeShares {
  const shares: NodeShares = new Map();
  for (const room of index.allRooms()) {
    const share = shareOf(room, nodeId, claimed?.(room));
    if (share) shares.set(roomField(room.projectKey, room.sessionId), share);
  }
  return shares;
}

// ---- decoding what comes back from Redis: our own writes, but checked, never trusted blindly ----

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function isTab(v: unknown): v is TabState {
  return (
    isObject(v) &&
    typeof v.tabId === 'string' &&
    typeof v.socketId === 'string' &&
    typeof v.nodeId === 'string' &&
    typeof v.pageTitle === 'string' &&
    typeof v.active === 'boolean' &&
    isNumber(v.connectedAt) &&
    isNumber(v.lastActiveAt)
  );
}

function isAgent(v: unknown): v is AgentState {
  return isObject(v) && typeof v.socketId === 'string' && typeof v.nodeId === 'string' && isObject(v.info) && 'config' in v && isNumber(v.joinedAt);
}

function isData(v: unknown): v is SessionData {
  return isObject(v) && isObject(v.fields) && isNumber(v.version) && typeof v.origin === 'string';
}

export function isRoomShare(v: unknown): v is RoomShare {
  return isObject(v) && Array.isArray(v.tabs) && v.tabs.every(isTab) && Array.isArray(v.agents) && v.agents.every(isAgent) && (v.data === undefined || isData(v.data));
}

function isRoomRef(v: Record<string, unknown>): boolean {
  return typeof v.projectKey === 'string' && typeof v.sessionId === 'string';
}

export function isIndexOp(v: unknown): v is IndexOp {
  if (!isObject(v)) return false;
  switch (v.type) {
    case 'tab:up':
      return isRoomRef(v) && isTab(v.tab) && (v.data === undefined || isData(v.data));
    case 'tab:down':
      return isRoomRef(v) && typeof v.tabId === 'string' && typeof v.socketId === 'string';
    case 'data':
      return isRoomRef(v) && isData(v.data);
    case 'agent:up':
      return isRoomRef(v) && isAgent(v.agent);
    case 'agent:down':
      return isRoomRef(v) && typeof v.socketId === 'string';
    case 'node:down':
      return typeof v.nodeId === 'string';
    default:
      return false;
  }
}

export function decodeShare(text: string): RoomShare | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return isRoomShare(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** A node's hash as HGETALL returns it; fields that do not decode are counted and skipped. */
export function decodeShares(hash: Record<string, string>): { shares: NodeShares; invalid: number } {
  const shares: NodeShares = new Map();
  let invalid = 0;
  for (const [field, text] of Object.entries(hash)) {
    const share = parseRoomField(field) ? decodeShare(text) : undefined;
    if (share) shares.set(field, share);
    else invalid++;
  }
  return { shares, invalid };
}

/** A state entry's payload: `[[field, share], ...]` (built from already-encoded shares, see encodeStatePayload). */
export function decodeStatePayload(text: string): NodeShares | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!Array.isArray(value)) return undefined;
  const shares: NodeShares = new Map();
  for (const pair of value as unknown[]) {
    if (!Array.isArray(pair) || pair.length !== 2) return undefined;
    const [field, share] = pair as unknown[];
    if (typeof field !== 'string' || !parseRoomField(field) || !isRoomShare(share)) return undefined;
    shares.set(field, share);
  }
  return shares;
}

/** Builds a state payload from `[field, encoded share]` pairs without serialising the shares twice. */
export function encodeStatePayload(pairs: readonly (readonly [string, string])[]): string {
  return `[${pairs.map(([field, share]) => `[${JSON.stringify(field)},${share}]`).join(',')}]`;
}

// ---- merging shares into the index ----

/**
 * The ops that make the index hold exactly `states` for every node `replaced` selects: first the
 * removals (tabs and agents of those nodes that their state no longer lists), then every tab and
 * agent of the states. Re-adding what the index already holds is a no-op there (whole-state ops),
 * so a resync that finds nothing new changes nothing and tells no listener. Which of several claims
 * on one tab the index holds is not decided here but by the store's claims (pickClaim); the
 * tab:ups are ordered by connection time only so that the earlier claim is offered first.
 */
export function reconcileOps(index: SessionIndex, states: ReadonlyMap<string, NodeShares>, replaced: (nodeId: string) => boolean): IndexOp[] {
  const removals: IndexOp[] = [];
  for (const room of index.allRooms()) {
    const field = roomField(room.projectKey, room.sessionId);
    const ref = { projectKey: room.projectKey, sessionId: room.sessionId };
    for (const tab of room.tabs) {
      if (!replaced(tab.nodeId)) continue;
      const listed = states.get(tab.nodeId)?.get(field)?.tabs.some((t) => t.tabId === tab.tabId && t.socketId === tab.socketId);
      if (!listed) removals.push({ type: 'tab:down', ...ref, tabId: tab.tabId, socketId: tab.socketId });
    }
    for (const agent of room.agents.values()) {
      if (!replaced(agent.nodeId)) continue;
      const listed = states.get(agent.nodeId)?.get(field)?.agents.some((a) => a.socketId === agent.socketId);
      if (!listed) removals.push({ type: 'agent:down', ...ref, socketId: agent.socketId });
    }
  }
  const tabUps: Extract<IndexOp, { type: 'tab:up' }>[] = [];
  const agentUps: IndexOp[] = [];
  for (const [nodeId, shares] of states) {
    if (!replaced(nodeId)) continue;
    for (const [field, share] of shares) {
      const ref = parseRoomField(field);
      if (!ref) continue;
      share.tabs.forEach((tab, i) => {
        // A share lists only its own node's sockets; anything else in it is not this node's to claim.
        if (tab.nodeId !== nodeId) return;
        tabUps.push(i === 0 && share.data ? { type: 'tab:up', ...ref, tab, data: share.data } : { type: 'tab:up', ...ref, tab });
      });
      for (const agent of share.agents) if (agent.nodeId === nodeId) agentUps.push({ type: 'agent:up', ...ref, agent });
    }
  }
  tabUps.sort((a, b) => a.tab.connectedAt - b.tab.connectedAt || (a.tab.nodeId < b.tab.nodeId ? -1 : a.tab.nodeId > b.tab.nodeId ? 1 : 0));
  return [...removals, ...tabUps, ...agentUps];
}

/**
 * A node's claim on a tab: one of its sockets connected with that tabId. `replaces` names the socket
 * of a holder this claim took the tab over from (its node had stopped heartbeating).
 */
export interface TabClaim {
  tab: TabState;
  replaces?: string;
}

/**
 * Which of the live claims on one tab holds it. A rule on the set of claims, not on the order they
 * arrived in: every node holds the same claims once replication has caught up (each node's claims
 * travel in its ops, its state entries and its saved share), so every node picks the same holder,
 * after any fault, whatever order it learned them in, and a claim that lost is picked again when
 * the winner leaves. The node of a losing socket disconnects it, and its leave removes its claim
 * everywhere: the claims converge on the sockets really connected.
 * - a claim replaced by another live claim is out;
 * - of the rest, the earliest connection wins (ties: node id, then socket id).
 */
export function pickClaim<C extends TabClaim>(claims: Iterable<C>): C | undefined {
  const all = [...claims];
  const replaced = new Set<string>();
  for (const c of all) if (c.replaces !== undefined && c.replaces !== c.tab.socketId) replaced.add(c.replaces);
  let best: C | undefined;
  for (const c of all) {
    if (replaced.has(c.tab.socketId)) continue;
    if (!best || compareClaims(c, best) < 0) best = c;
  }
  // Replacements in a cycle cannot happen (a claim replaces an earlier holder); should they, no tab is lost.
  return best ?? all.sort(compareClaims)[0];
}

function compareClaims(a: TabClaim, b: TabClaim): number {
  return a.tab.connectedAt - b.tab.connectedAt || cmp(a.tab.nodeId, b.tab.nodeId) || cmp(a.tab.socketId, b.tab.socketId);
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
