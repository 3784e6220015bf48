/**
 * A dashboard's local copy of one subscription's result: a snapshot plus the diffs applied in
 * `seq` order. Pure; the socket side is dashboardClient.ts.
 */
import type { SessionsDiff } from '../protocol';
import type { Session } from '../sessions/model';
import { compareSessions, type SortField, type SortOrder } from '../sessions/grammar';

export type ApplyResult = 'applied' | 'duplicate' | 'gap';

export class LiveView {
  readonly sessions = new Map<string, Session>();
  total = 0;
  seq = 0;

  constructor(
    readonly sort: SortField,
    readonly order: SortOrder,
  ) {}

  reset(snapshot: { seq: number; total: number; sessions: readonly Session[] }): void {
    this.sessions.clear();
    for (const s of snapshot.sessions) this.sessions.set(s.sessionID, s);
    this.total = snapshot.total;
    this.seq = snapshot.seq;
  }

  /** Applies the next diff; an older one is a duplicate (ignored), a later one reveals a gap (not applied). */
  apply(diff: SessionsDiff): ApplyResult {
    if (diff.seq <= this.seq) return 'duplicate';
    if (diff.seq !== this.seq + 1) return 'gap';
    for (const id of diff.removed) this.sessions.delete(id);
    for (const s of diff.added) this.sessions.set(s.sessionID, s);
    for (const s of diff.updated) this.sessions.set(s.sessionID, s);
    this.total = diff.total;
    this.seq = diff.seq;
    return 'applied';
  }

  /** The view in the subscription's order: equal to the REST search's first page. */
  list(): Session[] {
    return [...this.sessions.values()].sort((a, b) => compareSessions(a, b, this.sort, this.order));
  }
}
