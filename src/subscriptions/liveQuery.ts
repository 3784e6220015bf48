/**
 * A live query: the incrementally maintained result of one search (filters, sort, order, limit)
 * over one project, and the diff of its first page between two instants. Pure: it is fed the
 * index's change events and never reads anything else.
 *
 * It keeps every match in search order (not just the window), so that when a session leaves the
 * window the next one can enter it, exactly as the REST search's first page would show.
 */
import type { Session } from '../sessions/model';
import { type SearchQuery, compareKeys, matchesAll, sortKeyOf } from '../sessions/query';
import type { SessionChange } from '../sessions/sessionIndex';

type SortKey = ReturnType<typeof sortKeyOf>;

interface Entry {
  id: string;
  key: SortKey;
  session: Session;
}

export interface WindowDiff {
  total: number;
  added: Session[];
  updated: Session[];
  removed: string[];
}

export type LiveQueryParams = Pick<SearchQuery, 'filters' | 'sort' | 'order' | 'limit'>;

export class LiveQuery {
  /** Every match, in search order. */
  private readonly sorted: Entry[] = [];
  private readonly byId = new Map<string, Entry>();
  /** The first page as last reported by `takeDiff` (or `snapshot`). */
  private reported = new Map<string, Session>();
  private reportedTotal = 0;

  constructor(
    readonly params: LiveQueryParams,
    sessions: Iterable<Session>,
  ) {
    for (const s of sessions) if (matchesAll(s, params.filters)) this.insert({ id: s.sessionID, key: sortKeyOf(s, params.sort), session: s });
    this.markReported();
  }

  get total(): number {
    return this.sorted.length;
  }

  /** Applies one change; true if the result (its first page or its total) may differ now. */
  apply(change: SessionChange): boolean {
    const existing = this.byId.get(change.sessionId);
    const after = change.after && matchesAll(change.after, this.params.filters) ? change.after : undefined;
    if (!existing && !after) return false;
    let touched = false;
    if (existing) {
      const at = this.lowerBound(existing);
      this.sorted.splice(at, 1);
      this.byId.delete(existing.id);
      if (at < this.params.limit) touched = true;
    }
    if (after) {
      const at = this.insert({ id: after.sessionID, key: sortKeyOf(after, this.params.sort), session: after });
      if (at < this.params.limit) touched = true;
    }
    return touched || (existing === undefined) !== (after === undefined);
  }

  /** The current first page, in search order. */
  window(): Session[] {
    return this.sorted.slice(0, this.params.limit).map((e) => e.session);
  }

  /** The first page now, recorded as reported: the base of the next diff. */
  snapshot(): { total: number; sessions: Session[] } {
    this.markReported();
    return { total: this.reportedTotal, sessions: [...this.reported.values()] };
  }

  /** What changed in the first page (and total) since the last report; undefined when nothing did. */
  takeDiff(): WindowDiff | undefined {
    const next = this.window();
    const added: Session[] = [];
    const updated: Session[] = [];
    const nextIds = new Set<string>();
    for (const s of next) {
      nextIds.add(s.sessionID);
      const before = this.reported.get(s.sessionID);
      if (!before) added.push(s);
      else if (before !== s) updated.push(s);
    }
    const removed: string[] = [];
    for (const id of this.reported.keys()) if (!nextIds.has(id)) removed.push(id);
    const total = this.sorted.length;
    if (added.length === 0 && updated.length === 0 && removed.length === 0 && total === this.reportedTotal) return undefined;
    this.reported = new Map(next.map((s) => [s.sessionID, s]));
    this.reportedTotal = total;
    return { total, added, updated, removed };
  }

  private markReported(): void {
    this.reported = new Map(this.window().map((s) => [s.sessionID, s]));
    this.reportedTotal = this.sorted.length;
  }

  private compare(a: Entry, b: Entry): number {
    return compareKeys(a.key, a.id, b.key, b.id, this.params.order);
  }

  /** Index of the first entry not before `entry` (binary search). */
  private lowerBound(entry: Entry): number {
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.compare(this.sorted[mid] as Entry, entry) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private insert(entry: Entry): number {
    const at = this.lowerBound(entry);
    this.sorted.splice(at, 0, entry);
    this.byId.set(entry.id, entry);
    return at;
  }
}
