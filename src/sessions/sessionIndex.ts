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
  readonly tabs: Map<string, TabState>;
  /** Most sessions never have an agent: they share one empty map until their first one joins. */
  agents: ReadonlyMap<string, AgentState>;
  /** The combined session, while the room has at least one tab and data. */
  view: Session | undefined;
  /** Serialised `view`, computed on first read. */
  json: string | undefined;
  /** The secondary-index keys this session is filed under (the index's own key strings, shared). */
  indexKeys: string[];
}

const NO_AGENTS: ReadonlyMap<string, AgentState> = new Map();

/** Sessions filed under one secondary-index key; `key` is kept once here and shared by the rooms. */
interface IndexBucket {
  readonly key: string;
  readonly sessionIds: Set<string>;
}

export interface SearchPage {
  total: number;
  rooms: Room[];
}

class ProjectIndex {
  readonly rooms = new Map<string, Room>();
  /** Secondary index: `attribute\0lower-cased value` -> sessionIds. */
  readonly byValue = new Map<string, IndexBucket>();
  liveSessions = 0;
  version = 0;
}

function indexKeysOf(view: Session): string[] {
  const keys: string[] = [];
  for (const attr of INDEXED_ATTRIBUTES) {
    const text = normalizeText(view[attr]);
    if (text !== undefined) keys.push(`${attr}\0${text}`);
  }
  for (const [key, value] of Object.entries(view.metadata)) {
    const text = normalizeText(value);
    if (text !== undefined) keys.push(`metadata.${key}\0${text}`);
  }
  return keys;
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

export class SessionIndex {
  private readonly projects = new Map<string, ProjectIndex>();
  private readonly listeners = new Set<ChangeListener>();
  private liveSessions = 0;
  /** Source of project versions: global, so a project that empties and refills never reuses one. */
  private clock = 0;

  onChange(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  apply(op: IndexOp): void {
    switch (op.type) {
      case 'tab:up': {
        const room = this.roomFor(op.projectKey, op.sessionId);
        const newData = op.data !== undefined && isNewer(op.data, room.data);
        // The same tab state again (a replayed op) with no newer data changes nothing: no event, no new version.
        if (!newData && sameTab(room.tabs.get(op.tab.tabId), op.tab)) return;
        if (newData) room.data = op.data;
        room.tabs.set(op.tab.tabId, op.tab);
        this.refresh(room);
        return;
      }
      case 'tab:down': {
        const room = this.room(op.projectKey, op.sessionId);
        const tab = room?.tabs.get(op.tabId);
        if (!room || !tab || tab.socketId !== op.socketId) return;
        room.tabs.delete(op.tabId);
        this.refresh(room);
        return;
      }
      case 'data': {
        const room = this.room(op.projectKey, op.sessionId);
        // Data for a session with no tab left is stale: its last tab's leave has been applied.
        if (!room || room.tabs.size === 0 || !isNewer(op.data, room.data)) return;
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
      case 'node:down': {
        for (const project of this.projects.values()) {
          for (const room of [...project.rooms.values()]) {
            let tabsGone = false;
            for (const [tabId, tab] of room.tabs) {
              if (tab.nodeId === op.nodeId) {
                room.tabs.delete(tabId);
                tabsGone = true;
              }
            }
            this.dropAgents(room, (agent) => agent.nodeId === op.nodeId);
            if (tabsGone) this.refresh(room);
            else this.dropIfEmpty(room);
          }
        }
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

  /** The session's JSON, serialised once per change. */
  sessionJson(room: Room): string {
    if (room.json === undefined) room.json = JSON.stringify(room.view);
    return room.json;
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

  /**
   * The rooms worth matching: for the `is` filter on an indexed attribute with the fewest
   * candidates, the union of its values' sessions; without one, the whole project.
   */
  private candidates(project: ProjectIndex, filters: readonly Filter[]): Iterable<Room> {
    let best: Set<string>[] | undefined;
    let bestSize = Infinity;
    for (const f of filters) {
      if (f.operator !== 'is' || f.values.length === 0) continue;
      const attr = f.isMetadata ? `metadata.${f.attribute}` : f.attribute;
      if (!f.isMetadata && !(INDEXED_ATTRIBUTES as readonly string[]).includes(attr)) continue;
      const sets: Set<string>[] = [];
      let size = 0;
      for (const v of f.values) {
        const set = project.byValue.get(`${attr}\0${v}`)?.sessionIds;
        if (set) {
          sets.push(set);
          size += set.size;
        }
      }
      if (size < bestSize) {
        best = sets;
        bestSize = size;
      }
    }
    if (!best) return project.rooms.values();
    const ids = best.length === 1 ? (best[0] as Set<string>) : new Set(best.flatMap((s) => [...s]));
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
      room = { projectKey, sessionId, data: undefined, tabs: new Map(), agents: NO_AGENTS, view: undefined, json: undefined, indexKeys: [] };
      project.rooms.set(sessionId, room);
    }
    return room;
  }

  /** Recomputes a room's view after its tabs or data changed, keeps the indexes and tells listeners. */
  private refresh(room: Room): void {
    const project = this.projects.get(room.projectKey) as ProjectIndex;
    const before = room.view;
    if (room.tabs.size === 0) room.data = undefined;
    const after = room.tabs.size > 0 && room.data ? combineSession(room.projectKey, room.sessionId, room.data, [...room.tabs.values()]) : undefined;
    room.view = after;
    room.json = undefined;
    this.reindex(project, room, after);
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

  private reindex(project: ProjectIndex, room: Room, view: Session | undefined): void {
    const next = view ? indexKeysOf(view) : [];
    for (const key of room.indexKeys) {
      if (next.includes(key)) continue;
      const bucket = project.byValue.get(key);
      if (!bucket) continue;
      bucket.sessionIds.delete(room.sessionId);
      if (bucket.sessionIds.size === 0) project.byValue.delete(key);
    }
    room.indexKeys = next.map((key) => {
      let bucket = project.byValue.get(key);
      if (!bucket) {
        bucket = { key, sessionIds: new Set() };
        project.byValue.set(key, bucket);
      }
      bucket.sessionIds.add(room.sessionId);
      return bucket.key;
    });
  }

  private dropIfEmpty(room: Room): void {
    if (room.tabs.size > 0 || room.agents.size > 0) return;
    const project = this.projects.get(room.projectKey);
    if (!project) return;
    project.rooms.delete(room.sessionId);
    if (project.rooms.size === 0) this.projects.delete(room.projectKey);
  }
}
