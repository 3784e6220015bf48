/**
 * The decisions behind a tracker tab's life, as pure functions: each takes what the index holds and
 * what a socket sent, and returns the index op to publish or a refusal. The live layer
 * (src/live/rooms.ts) only reads the index, calls these and publishes what they return.
 *
 * Time is the one input they do not compute: a `TabClock` hands out tab times, read only when a
 * decision needs one (so a decision that needs none does not move the clock).
 */
import type { AgentState, JsonObject, SessionData, TabState } from './model';
import type { IndexOp } from './ops';
import { type DataResult, type SessionDataLimits, isPlainObject, mergeSessionData, newSessionData, splitTabFields, tabFieldsOf, updatableFields } from './sessionData';

type TabUpOp = Extract<IndexOp, { type: 'tab:up' }>;
type DataOp = Extract<IndexOp, { type: 'data' }>;

/** What these decisions read of a room (the index's `Room` satisfies it). */
export interface RoomView {
  readonly data: SessionData | undefined;
  readonly tabs: readonly TabState[];
  readonly agents: ReadonlyMap<string, AgentState>;
}

/** A refusal: the index is left as it was; `message` says why (never a secret). */
export interface TabRefusal {
  ok: false;
  message: string;
}

/**
 * Tab times: wall-clock milliseconds with a microsecond fraction that never repeat and never go
 * back within this process (two tabs active within one millisecond are still ordered, and the
 * session shows the page title of the most recently active one), without drifting ahead as a
 * counter would.
 */
export class TabClock {
  private last = 0;

  constructor(private readonly wallClock: () => number) {}

  next(): number {
    this.last = Math.max(this.wallClock(), this.last + 0.001);
    return this.last;
  }
}

export interface TrackerJoin {
  projectKey: string;
  sessionId: string;
  tabId: string;
  socketId: string;
  nodeId: string;
  /** The handshake's sessionInfo (already parsed and bounded), the caller's own: a new session's data keeps its values. */
  info: JsonObject;
}

/**
 * A tracker tab joins: its sessionInfo merged into the session's data, and its tab state, as one
 * `tab:up` op; refused when the merged data is past the limits.
 */
export function tabJoinOp(room: RoomView | undefined, join: TrackerJoin, limits: SessionDataLimits, clock: TabClock): { ok: true; op: TabUpOp } | TabRefusal {
  let tabFields: { pageTitle?: string; active?: boolean };
  let data: DataResult<SessionData>;
  if (room?.data === undefined) {
    // A session's first tab (or its first since the data went): no merge, no copies of the info.
    tabFields = tabFieldsOf(join.info);
    data = newSessionData(join.info, limits, join.nodeId);
  } else {
    const split = splitTabFields(join.info);
    tabFields = split.tab;
    data = mergeSessionData(room.data, split.session, limits, join.nodeId);
  }
  if (!data.ok) return { ok: false, message: data.message };
  const now = clock.next();
  return {
    ok: true,
    op: {
      type: 'tab:up',
      projectKey: join.projectKey,
      sessionId: join.sessionId,
      tab: { tabId: join.tabId, socketId: join.socketId, nodeId: join.nodeId, pageTitle: tabFields.pageTitle ?? '', active: tabFields.active ?? true, connectedAt: now, lastActiveAt: now },
      data: data.value,
    },
  };
}

/** Whether an update's tab fields change the tab (becoming active always counts: it moves lastActiveAt). */
export function tabChanged(tab: TabState, update: { pageTitle?: string; active?: boolean }): boolean {
  return (update.pageTitle !== undefined && update.pageTitle !== tab.pageTitle) || (update.active !== undefined && update.active !== tab.active) || update.active === true;
}

/**
 * An UPDATE_SESSION from the tab that holds `tab`: a `tab:up` (with the merged data when it changed
 * too) when the tab fields changed, a `data` op when only session fields did, no op when nothing
 * did; refused when the merged data is past the limits.
 */
export function tabUpdateOp(
  ref: { projectKey: string; sessionId: string },
  room: RoomView,
  tab: TabState,
  update: unknown,
  limits: SessionDataLimits,
  nodeId: string,
  clock: TabClock,
): { ok: true; op: TabUpOp | DataOp | undefined } | TabRefusal {
  const split = splitTabFields(isPlainObject(update) ? update : {});
  const session = updatableFields(split.session);
  let nextData: SessionData | undefined;
  if (Object.keys(session).length > 0) {
    const merged = mergeSessionData(room.data, session, limits, nodeId);
    if (!merged.ok) return { ok: false, message: merged.message };
    nextData = merged.value;
  }
  const fields = split.tab;
  if (tabChanged(tab, fields)) {
    const nextTab: TabState = {
      tabId: tab.tabId,
      socketId: tab.socketId,
      nodeId: tab.nodeId,
      pageTitle: fields.pageTitle ?? tab.pageTitle,
      active: fields.active ?? tab.active,
      connectedAt: tab.connectedAt,
      lastActiveAt: fields.active === true ? clock.next() : tab.lastActiveAt,
    };
    return { ok: true, op: { type: 'tab:up', projectKey: ref.projectKey, sessionId: ref.sessionId, tab: nextTab, data: nextData } };
  }
  if (nextData) return { ok: true, op: { type: 'data', projectKey: ref.projectKey, sessionId: ref.sessionId, data: nextData } };
  return { ok: true, op: undefined };
}

/**
 * The tab an agent's event goes to: the one its payload's `meta.tabId` names when the session has
 * it, otherwise the session's first tab; none when the session has no tab.
 */
export function agentEventTab(room: RoomView | undefined, payload: unknown): TabState | undefined {
  if (!room) return undefined;
  const wanted = isPlainObject(payload) && isPlainObject(payload.meta) ? payload.meta.tabId : undefined;
  return (typeof wanted === 'string' ? room.tabs.find((t) => t.tabId === wanted) : undefined) ?? room.tabs[0];
}

/** The WebRTC configuration a (re)joining tab gets: that of the agent that joined last with one, else null. */
export function lastAgentConfig(room: RoomView): unknown {
  let config: unknown = null;
  let latest = -Infinity;
  for (const agent of room.agents.values()) {
    if (agent.config !== null && agent.joinedAt >= latest) {
      config = agent.config;
      latest = agent.joinedAt;
    }
  }
  return config;
}
