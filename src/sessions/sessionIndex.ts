/**
 * The in-memory index of live sessions, per project. Pure: it changes only through `apply(op)`
 * and reports every change of a session's view to its listeners, synchronously, in order.
 *
 * Reads never walk other projects: each project has its own map, secondary indexes for the `is`
 * filters on common attributes, and a version that grows with every change (for caches).
 */
import type { AgentState, Session, SessionData, TabState } from './model';
import type { IndexOp } from './ops';
import { combineSession } from './sessionData';
import { type Filter, type SearchQuery, compareKeys, matchesAll, normalizeText, sortKeyOf } from './query';

/** Attributes with a value -> sessions index; metadata keys are indexed as `metadata.<key>`. */
const INDEXED_ATTRIBUTES = ['userID', 'userOs', 'userBrowser', 'userDeviceType', 'userCountry'] as const;

/** A session's view changed: it appeared (`before` undefined), changed, or ended (`after` undefined). */
export interface SessionChange {
  projectKey: string;
  sessionId: string;
  before: Session | undefined;
  after: Session | undefined;
}
export type ChangeListener = (change: SessionChange) => void;

/** A session's room: its tabs, its agents and its data. Exists while it has a tab or an agent. */
export interface Room {
  readonly projectKey: string;
  readonly sessionId: string;
  data: SessionData | undefined;
  /**
   * Replaced, never changed in place, in the order the tabs came. An array, not a map: most sessions
   * have one tab, which an array holds in far less (figures: docs/performance.md, "Figures behind choices in the code").
   */
  tabs: readonly TabState[];
  /** Most sessions never have an agent: they share one empty map until their first one joins. */
  agents: ReadonlyMap<string, AgentState>;
  /** The combined session, while the room has at least one tab and data; replaced, never changed. */
  view: Session | undefined;
}

const NO_AGENTS: ReadonlyMap<string, AgentState> = new Map();
const NO_TABS: readonly TabState[] = Object.freeze([]);

/** A room as readers see it: nothing of it can be assigned (only the index replaces its parts). */
export type ReadonlyRoom = Readonly<Room>;

/** What one op did to its session's view, as the change listeners hear it. */
export type ViewChange = 'none' | 'appeared' | 'changed' | 'ended';

/** A tab that joined or left a session's room. */
export interface TabMove {
  readonly projectKey: string;
  readonly sessionId: string;
  readonly tab: TabState;
}

/**
 * What one op changed, as Phoenix presence's merge returns its joins and leaves: what a caller
 * (replication, tab claims) needs without comparing the room before and after itself.
 */
export interface Applied {
  /** The op's room has other session data than before (replaced, or gone with its last tab); false for `node:down`. */
  readonly dataChanged: boolean;
  /** The op's session view; `none` for `node:down`, whose sessions the listeners hear one by one. */
  readonly view: ViewChange;
  /**
   * Tabs in the room now that were not before, and the other way round. A tab is its id and its
   * socket: one taken over by a new socket leaves and joins; a tab whose fields changed does neither.
   * `node:down` leaves every tab the node held, in every room.
   */
  readonly joins: readonly TabMove[];
  readonly leaves: readonly TabMove[];
}

const NO_MOVES: readonly TabMove[] = Object.freeze([]);

/** An outcome without joins or leaves, shared and frozen: the common path allocates nothing. */
function settled(dataChanged: boolean, view: ViewChange): Applied {
  return Object.freeze({ dataChanged, view, joins: NO_MOVES, leaves: NO_MOVES });
}

const SETTLED: Readonly<Record<ViewChange, readonly [unchangedData: Applied, changedData: Applied]>> = {
  none: [settled(false, 'none'), settled(true, 'none')],
  appeared: [settled(false, 'appeared'), settled(true, 'appeared')],
  changed: [settled(false, 'changed'), settled(true, 'changed')],
  ended: [settled(false, 'ended'), settled(true, 'ended')],
};

function viewChange(before: Session | undefined, after: Session | undefined): ViewChange {
  if (before === after) return 'none';
  if (!before) return 'appeared';
  return after ? 'changed' : 'ended';
}

/** The tabs of `from` that `to` does not hold (same id and socket), as moves of one room. */
function missingFrom(from: readonly TabState[], to: readonly TabState[], projectKey: string, sessionId: string, moves?: TabMove[]): TabMove[] | undefined {
  for (const tab of from) {
    if (!to.some((t) => t.tabId === tab.tabId && t.socketId === tab.socketId)) (moves ??= []).push({ projectKey, sessionId, tab });
  }
  return moves;
}

/** The outcome of an op on one room, from the room's tabs before and after it. */
function appliedTo(projectKey: string, sessionId: string, dataChanged: boolean, view: ViewChange, before: readonly TabState[], after: readonly TabState[]): Applied {
  const shared = SETTLED[view][dataChanged ? 1 : 0];
  // Tabs are replaced, never changed in place: the same array is the same tabs.
  if (before === after) return shared;
  const joins = missingFrom(after, before, projectKey, sessionId);
  const leaves = missingFrom(before, after, projectKey, sessionId);
  if (!joins && !leaves) return shared;
  return { dataChanged, view, joins: joins ?? NO_MOVES, leaves: leaves ?? NO_MOVES };
}

/**
 * The index as adapters (live handlers, REST, subscriptions) see it: every read, no write. Only
 * the store (src/cluster/) holds the `SessionIndex` itself and applies ops to it.
 */
export interface SessionIndexView {
  onChange(listener: ChangeListener): () => void;
  room(projectKey: string, sessionId: string): ReadonlyRoom | undefined;
  session(projectKey: string, sessionId: string): Session | undefined;
  sessions(projectKey: string): IterableIterator<Session>;
  projectVersion(projectKey: string): number;
  projectSize(projectKey: string): number;
  readonly size: number;
  search(projectKey: string, query: SearchQuery): SearchPage;
  autocomplete(projectKey: string, filter: Pick<Filter, 'attribute' | 'isMetadata'>, q: string, limit: number): string[];
  metadataKeys(projectKey: string, max: number): string[];
}

export function findTab(room: ReadonlyRoom | undefined, tabId: string): TabState | undefined {
  return room?.tabs.find((tab) => tab.tabId === tabId);
}

/** `tabs` with `tab` in place of the one with its id, or after the others. */
function withTab(tabs: readonly TabState[], tab: TabState): readonly TabState[] {
  return tabs.some((t) => t.tabId === tab.tabId) ? tabs.map((t) => (t.tabId === tab.tabId ? tab : t)) : tabs.concat(tab);
}

/** `tabs` without those `gone` picks; the same array when it picks none. */
function withoutTabs(tabs: readonly TabState[], gone: (tab: TabState) => boolean): readonly TabState[] {
  if (!tabs.some(gone)) return tabs;
  const kept = tabs.filter((t) => !gone(t));
  // `filter` grows its result with room to spare; a copy is exact.
  return kept.length === 0 ? NO_TABS : kept.slice();
}

/**
 * The sessions filed under one secondary-index key: the session id itself while there is one (as
 * for most user ids), a set from two on (a set of one costs more than its id; figures: docs/performance.md, "Figures behind choices in the code").
 */
type Filed = string | Set<string>;

function fileUnder(byValue: Map<string, Filed>, key: string, sessionId: string): void {
  const filed = byValue.get(key);
  if (filed === undefined) byValue.set(key, sessionId);
  else if (typeof filed !== 'string') filed.add(sessionId);
  else if (filed !== sessionId) byValue.set(key, new Set([filed, sessionId]));
}

function unfile(byValue: Map<string, Filed>, key: string, sessionId: string): void {
  const filed = byValue.get(key);
  if (filed === sessionId) {
    byValue.delete(key);
  } else if (filed !== undefined && typeof filed !== 'string' && filed.delete(sessionId) && filed.size === 1) {
    for (const last of filed) byValue.set(key, last);
  }
}

export interface SearchPage {
  total: number;
  rooms: Room[];
}

class ProjectIndex {
  readonly rooms = new Map<string, Room>();
  /** Secondary index: `attribute\0lower-cased value` -> the sessions filed under it. */
  readonly byValue = new Map<string, Filed>();
  liveSessions = 0;
  version = 0;
}

/**
 * A secondary-index key. `join` builds a flat string, where a `+` would keep a cons wrapper in the map
 * for as long as the key lives (figures: docs/performance.md, "Figures behind choices in the code").
 */
function indexKey(attribute: string, text: string): string {
  return [attribute, text].join('\0');
}

/** The index keys of a view. */
function indexKeysOf(view: Session): string[] {
  const keys: string[] = [];
  for (const attr of INDEXED_ATTRIBUTES) {
    const text = normalizeText(view[attr]);
    if (text !== undefined) keys.push(indexKey(attr, text));
  }
  for (const [key, value] of Object.entries(view.metadata)) {
    const text = normalizeText(value);
    if (text !== undefined) keys.push(indexKey(`metadata.${key}`, text));
  }
  return keys;
}

/** Moves a session from the keys of its previous view to those of its next (rooms keep no list of their keys). */
function reindex(byValue: Map<string, Filed>, sessionId: string, before: Session | undefined, after: Session | undefined): void {
  const previous = before ? indexKeysOf(before) : [];
  const next = after ? indexKeysOf(after) : [];
  for (const key of previous) if (!next.includes(key)) unfile(byValue, key, sessionId);
  for (const key of next) if (!previous.includes(key)) fileUnder(byValue, key, sessionId);
}

function sameTab(a: TabState | undefined, b: TabState): boolean {
  return (
    a !== undefined &&
    a.socketId === b.socketId &&
    a.nodeId === b.nodeId &&
    a.pageTitle === b.pageTitle &&
    a.active === b.active &&
    a.connectedAt === b.connectedAt &&
    a.lastActiveAt === b.lastActiveAt
  );
}

function isNewer(next: SessionData, current: SessionData | undefined): boolean {
  if (!current) return true;
  return next.version > current.version || (next.version === current.version && next.origin > current.origin);
}

export class SessionIndex implements SessionIndexView {
  private readonly projects = new Map<string, ProjectIndex>();
  private readonly listeners = new Set<ChangeListener>();
  private liveSessions = 0;
  /** Source of project versions: global, so a project that empties and refills never reuses one. */
  private clock = 0;

  onChange(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Applies one op (only the store calls this) and says what it changed. */
  apply(op: IndexOp): Applied {
    if (op.type === 'node:down') return this.nodeDown(op.nodeId);
    const { projectKey, sessionId } = op;
    const before = this.room(projectKey, sessionId);
    const data = before?.data;
    const tabs = before?.tabs ?? NO_TABS;
    const view = before?.view;
    this.applyOp(op);
    const after = this.room(projectKey, sessionId);
    return appliedTo(projectKey, sessionId, after?.data !== data, viewChange(view, after?.view), tabs, after?.tabs ?? NO_TABS);
  }

  /** Every tab and agent of a node goes; the tabs are the outcome's leaves. */
  private nodeDown(nodeId: string): Applied {
    let leaves: TabMove[] | undefined;
    for (const project of this.projects.values()) {
      for (const room of [...project.rooms.values()]) {
        const tabs = room.tabs;
        room.tabs = withoutTabs(tabs, (tab) => tab.nodeId === nodeId);
        const tabsGone = room.tabs !== tabs;
        this.dropAgents(room, (agent) => agent.nodeId === nodeId);
        if (tabsGone) {
          leaves = missingFrom(tabs, room.tabs, room.projectKey, room.sessionId, leaves);
          this.refresh(room);
        } else {
          this.dropIfEmpty(room);
        }
      }
    }
    return leaves ? { dataChanged: false, view: 'none', joins: NO_MOVES, leaves } : SETTLED.none[0];
  }

  private applyOp(op: Exclude<IndexOp, { type: 'node:down' }>): void {
    switch (op.type) {
      case 'tab:up': {
        const room = this.roomFor(op.projectKey, op.sessionId);
        const newData = op.data !== undefined && isNewer(op.data, room.data);
        // The same tab state again (a replayed op) with no newer data changes nothing: no event, no new version.
        if (!newData && sameTab(findTab(room, op.tab.tabId), op.tab)) return;
        if (newData) room.data = op.data;
        room.tabs = withTab(room.tabs, op.tab);
        this.refresh(room);
        return;
      }
      case 'tab:down': {
        const room = this.room(op.projectKey, op.sessionId);
        const tab = findTab(room, op.tabId);
        if (!room || !tab || tab.socketId !== op.socketId) return;
        room.tabs = withoutTabs(room.tabs, (t) => t === tab);
        this.refresh(room);
        return;
      }
      case 'data': {
        const room = this.room(op.projectKey, op.sessionId);
        // Data for a session with no tab left is stale: its last tab's leave has been applied.
        if (!room || room.tabs.length === 0 || !isNewer(op.data, room.data)) return;
        room.data = op.data;
        this.refresh(room);
        return;
      }
      case 'agent:up': {
        const room = this.roomFor(op.projectKey, op.sessionId);
        room.agents = new Map(room.agents).set(op.agent.socketId, op.agent);
        return;
      }
      case 'agent:down': {
        const room = this.room(op.projectKey, op.sessionId);
        if (!room) return;
        this.dropAgents(room, (agent) => agent.socketId === op.socketId);
        this.dropIfEmpty(room);
        return;
      }
    }
  }

  room(projectKey: string, sessionId: string): Room | undefined {
    return this.projects.get(projectKey)?.rooms.get(sessionId);
  }

  session(projectKey: string, sessionId: string): Session | undefined {
    return this.room(projectKey, sessionId)?.view;
  }

  /** Every live session of a project, in no particular order. */
  *sessions(projectKey: string): IterableIterator<Session> {
    const project = this.projects.get(projectKey);
    if (!project) return;
    for (const room of project.rooms.values()) if (room.view) yield room.view;
  }

  /** Every room, for replication snapshots. */
  *allRooms(): IterableIterator<Room> {
    for (const project of this.projects.values()) yield* project.rooms.values();
  }

  projectVersion(projectKey: string): number {
    return this.projects.get(projectKey)?.version ?? 0;
  }

  projectSize(projectKey: string): number {
    return this.projects.get(projectKey)?.liveSessions ?? 0;
  }

  get size(): number {
    return this.liveSessions;
  }

  /** Matches, sorted, one page of them, and the count of all matches. */
  search(projectKey: string, query: SearchQuery): SearchPage {
    const project = this.projects.get(projectKey);
    if (!project) return { total: 0, rooms: [] };
    const matches: { room: Room; key: number | string | undefined }[] = [];
    for (const room of this.candidates(project, query.filters)) {
      const view = room.view;
      if (view && matchesAll(view, query.filters)) matches.push({ room, key: sortKeyOf(view, query.sort) });
    }
    const start = (query.page - 1) * query.limit;
    if (start >= matches.length) return { total: matches.length, rooms: [] };
    matches.sort((a, b) => compareKeys(a.key, a.room.sessionId, b.key, b.room.sessionId, query.order));
    return { total: matches.length, rooms: matches.slice(start, start + query.limit).map((m) => m.room) };
  }

  /** Distinct values of an attribute among a project's sessions that contain `q` (case-insensitive). */
  autocomplete(projectKey: string, filter: Pick<Filter, 'attribute' | 'isMetadata'>, q: string, limit: number): string[] {
    const project = this.projects.get(projectKey);
    if (!project) return [];
    if (limit <= 0) return [];
    const needle = q.toLowerCase();
    const seen = new Map<string, string>();
    for (const room of project.rooms.values()) {
      const view = room.view;
      if (!view) continue;
      const source: Record<string, unknown> = filter.isMetadata ? view.metadata : view;
      // Own properties only: `constructor`, `toString`... are not session attributes.
      if (!Object.hasOwn(source, filter.attribute)) continue;
      const raw = source[filter.attribute];
      if (raw === '' || (typeof raw !== 'string' && typeof raw !== 'number' && typeof raw !== 'boolean')) continue;
      const value = String(raw);
      const lower = value.toLowerCase();
      if (!lower.includes(needle) || seen.has(lower)) continue;
      seen.set(lower, value);
      if (seen.size >= limit) break;
    }
    return [...seen.values()];
  }

  /** Distinct metadata keys among a project's sessions, at most `max` (autocomplete across attributes). */
  metadataKeys(projectKey: string, max: number): string[] {
    const project = this.projects.get(projectKey);
    const keys = new Set<string>();
    if (!project) return [];
    for (const room of project.rooms.values()) {
      if (!room.view) continue;
      for (const key of Object.keys(room.view.metadata)) {
        keys.add(key);
        if (keys.size >= max) return [...keys];
      }
    }
    return [...keys];
  }

  /**
   * The rooms worth matching: for the `is` filter on an indexed attribute with the fewest
   * candidates, the union of its values' sessions; without one, the whole project.
   */
  private candidates(project: ProjectIndex, filters: readonly Filter[]): Iterable<Room> {
    let best: Filed[] | undefined;
    let bestSize = Infinity;
    for (const f of filters) {
      if (f.operator !== 'is' || f.values.length === 0) continue;
      const attr = f.isMetadata ? `metadata.${f.attribute}` : f.attribute;
      if (!f.isMetadata && !(INDEXED_ATTRIBUTES as readonly string[]).includes(attr)) continue;
      const filed: Filed[] = [];
      let size = 0;
      for (const v of f.values) {
        const ids = project.byValue.get(indexKey(attr, v));
        if (ids !== undefined) {
          filed.push(ids);
          size += typeof ids === 'string' ? 1 : ids.size;
        }
      }
      if (size < bestSize) {
        best = filed;
        bestSize = size;
      }
    }
    if (!best) return project.rooms.values();
    const only = best.length === 1 ? best[0] : undefined;
    const ids = only !== undefined && typeof only !== 'string' ? only : new Set(best.flatMap((f) => (typeof f === 'string' ? [f] : [...f])));
    const rooms: Room[] = [];
    for (const id of ids) {
      const room = project.rooms.get(id);
      if (room) rooms.push(room);
    }
    return rooms;
  }

  private roomFor(projectKey: string, sessionId: string): Room {
    let project = this.projects.get(projectKey);
    if (!project) {
      project = new ProjectIndex();
      this.projects.set(projectKey, project);
    }
    let room = project.rooms.get(sessionId);
    if (!room) {
      room = { projectKey, sessionId, data: undefined, tabs: NO_TABS, agents: NO_AGENTS, view: undefined };
      project.rooms.set(sessionId, room);
    }
    return room;
  }

  /** Recomputes a room's view after its tabs or data changed, keeps the indexes and tells listeners. */
  private refresh(room: Room): void {
    const project = this.projects.get(room.projectKey) as ProjectIndex;
    const before = room.view;
    if (room.tabs.length === 0) room.data = undefined;
    const after = room.tabs.length > 0 && room.data ? combineSession(room.projectKey, room.sessionId, room.data, room.tabs) : undefined;
    room.view = after;
    reindex(project.byValue, room.sessionId, before, after);
    if (!before && after) {
      project.liveSessions++;
      this.liveSessions++;
    } else if (before && !after) {
      project.liveSessions--;
      this.liveSessions--;
    }
    project.version = ++this.clock;
    this.dropIfEmpty(room);
    if (before || after) {
      const change: SessionChange = { projectKey: room.projectKey, sessionId: room.sessionId, before, after };
      for (const listener of this.listeners) listener(change);
    }
  }

  /** Agents are replaced, never changed in place: the empty map is shared (copy-on-write). */
  private dropAgents(room: Room, gone: (agent: AgentState) => boolean): void {
    const kept = [...room.agents].filter(([, agent]) => !gone(agent));
    if (kept.length !== room.agents.size) room.agents = kept.length > 0 ? new Map(kept) : NO_AGENTS;
  }

  private dropIfEmpty(room: Room): void {
    if (room.tabs.length > 0 || room.agents.size > 0) return;
    const project = this.projects.get(room.projectKey);
    if (!project) return;
    project.rooms.delete(room.sessionId);
    if (project.rooms.size === 0) this.projects.delete(room.projectKey);
  }
}
