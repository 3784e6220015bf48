/**
 * Live subscriptions of dashboards: cohorts of equal queries evaluated once, per-subscription
 * sequence numbers and bounded diff history for resume, at most one diff per cohort per window.
 * No Socket.IO here: diffs leave through a `DiffSink` that the dashboard handler provides.
 *
 * The window is a throttle, not a delay: a cohort that sent nothing for a window sends its next
 * change at once (with whatever else changed in the same turn); changes that come sooner wait for
 * the window to end and leave together. A quiet dashboard then sees a change within a turn instead
 * of a whole window later, and a busy one still gets at most one diff per window.
 */
import { randomUUID } from 'node:crypto';
import type { Metrics } from '../ops/metrics';
import type { SessionsDiff } from '../protocol';
import type { Session } from '../sessions/model';
import { queryKey } from '../sessions/query';
import type { SessionChange, SessionIndexView } from '../sessions/sessionIndex';
import { LiveQuery, type LiveQueryParams } from './liveQuery';

export interface SubscriptionLimits {
  /** Shortest time between two diffs of a cohort: changes within it leave as one diff. 0 = next turn. */
  diffWindowMs: number;
  maxPerProject: number;
  /** Subscriptions one credential (an API key, a JWT subject) may hold per project. */
  maxPerCredential: number;
  /** Diffs kept per subscription for resume. */
  historySize: number;
  /** How long diffs (and a detached subscription) are kept for resume. */
  historyAgeMs: number;
}

/** Where a subscription's diffs go. */
export interface DiffSink {
  /** Sends a diff; false when the consumer is past its buffer bound (the diff was not sent). */
  deliver(diff: SessionsDiff): boolean;
  /** Tells the consumer the subscription was reset: it must subscribe again (with resume) for a snapshot. */
  resync(subscriptionId: string, reason: string): void;
  /** Tells the consumer the subscription moved to another connection of the same credential. */
  revoked(subscriptionId: string, reason: string): void;
}

export interface Snapshot {
  subscriptionId: string;
  seq: number;
  total: number;
  sessions: Session[];
}

interface Cohort {
  readonly key: string;
  readonly projectKey: string;
  readonly query: LiveQuery;
  readonly subscriptions: Set<Subscription>;
  /** When the first change not yet sent happened (performance.now()), for the latency histogram. */
  dirtySince: number | undefined;
  /** When the cohort last sent a diff (performance.now()). */
  sentAt: number;
  /** When its pending changes are due (performance.now()); set while it is dirty. */
  dueAt: number;
}

/** When a cohort that changed at `now` sends: at once, unless it sent less than a window ago. */
export function diffDueAt(now: number, sentAt: number, windowMs: number): number {
  return Math.max(now, sentAt + windowMs);
}

interface Subscription {
  readonly id: string;
  readonly cohort: Cohort;
  /** The credential that created it: only it may resume it, and its quota counts it. */
  readonly owner: string;
  seq: number;
  readonly history: { diff: SessionsDiff; at: number }[];
  sink: DiffSink | undefined;
  detachedAt: number | undefined;
  /** Past its buffer bound: no diffs until the dashboard subscribes again. */
  needsResync: boolean;
}

interface ProjectEntry {
  cohorts: Set<Cohort>;
  subscriptions: number;
  /** Subscriptions per credential. */
  owners: Map<string, number>;
  /** Detached subscriptions, oldest first: they give way to live ones when a quota is reached. */
  detached: Set<Subscription>;
}

export type SubscribeRefusal = 'project-full' | 'credential-full';

/**
 * Which detached subscription a new one of `owner` replaces, if a quota is reached: the owner's
 * oldest when its own quota is full, else the project's oldest; 'full' when none can give way.
 */
export function makeRoom<S extends { owner: string }>(
  counts: { project: number; owner: number },
  limits: { maxPerProject: number; maxPerCredential: number },
  detachedOldestFirst: Iterable<S>,
  owner: string,
): S | undefined | SubscribeRefusal {
  const ownerFull = counts.owner >= limits.maxPerCredential;
  const projectFull = counts.project >= limits.maxPerProject;
  if (!ownerFull && !projectFull) return undefined;
  for (const sub of detachedOldestFirst) if (!ownerFull || sub.owner === owner) return sub;
  return ownerFull ? 'credential-full' : 'project-full';
}

export type ResumeResult = { kind: 'resumed'; subscriptionId: string; seq: number; total: number; missed: SessionsDiff[] } | { kind: 'resync'; snapshot: Snapshot };

export class SubscriptionRegistry {
  private readonly cohorts = new Map<string, Cohort>();
  private readonly byProject = new Map<string, ProjectEntry>();
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly dirty = new Set<Cohort>();
  private timer: NodeJS.Timeout | undefined;
  /** When the timer fires (performance.now()). */
  private timerAt = Number.POSITIVE_INFINITY;
  private readonly sweeper: NodeJS.Timeout;
  private readonly unlisten: () => void;

  constructor(
    private readonly index: SessionIndexView,
    private readonly limits: SubscriptionLimits,
    private readonly metrics: Metrics,
  ) {
    this.unlisten = index.onChange((change) => this.onChange(change));
    this.sweeper = setInterval(() => this.sweep(), Math.max(1000, Math.min(limits.historyAgeMs, 10_000))).unref();
  }

  get size(): number {
    return this.subscriptions.size;
  }

  /** A new subscription and its snapshot; the first diff will follow the snapshot without a gap. */
  subscribe(projectKey: string, params: LiveQueryParams, sink: DiffSink, owner: string): Snapshot | SubscribeRefusal {
    // Detached subscriptions give way, oldest first, until the new one fits or none is left.
    for (;;) {
      const project = this.byProject.get(projectKey);
      if (!project) break;
      const room = makeRoom({ project: project.subscriptions, owner: project.owners.get(owner) ?? 0 }, this.limits, project.detached, owner);
      if (room === undefined) break;
      if (typeof room === 'string') return room;
      this.metrics.resyncs.inc({ reason: 'evicted' });
      this.unsubscribe(room.id);
    }
    const cohort = this.cohortFor(projectKey, params);
    // The cohort's pending changes belong to its current members: sent before the newcomer joins,
    // they are part of its snapshot, never a diff it receives on top of it.
    this.flushCohort(cohort);
    const sub: Subscription = { id: randomUUID(), cohort, owner, seq: 0, history: [], sink, detachedAt: undefined, needsResync: false };
    cohort.subscriptions.add(sub);
    this.subscriptions.set(sub.id, sub);
    const entry = this.projectEntry(projectKey);
    entry.subscriptions++;
    entry.owners.set(owner, (entry.owners.get(owner) ?? 0) + 1);
    this.metrics.subscriptions.set(this.subscriptions.size);
    return this.snapshotOf(sub);
  }

  /**
   * Re-attaches a subscription after a reconnect: the diffs missed since `seq` if the history still
   * holds them all, else a fresh snapshot. Undefined when the subscription is unknown (expired) or
   * belongs to another credential (which learns nothing of it). A connection that held it is told.
   */
  resume(subscriptionId: string, seq: number, projectKey: string, sink: DiffSink, owner: string): ResumeResult | undefined {
    const sub = this.subscriptions.get(subscriptionId);
    if (!sub || sub.cohort.projectKey !== projectKey || sub.owner !== owner) return undefined;
    this.flushCohort(sub.cohort);
    const previous = sub.sink;
    sub.sink = sink;
    if (previous && previous !== sink) previous.revoked(sub.id, 'another connection of the same credential resumed this subscription');
    sub.detachedAt = undefined;
    this.projectEntry(projectKey).detached.delete(sub);
    const oldest = sub.history[0]?.diff.seq ?? sub.seq + 1;
    const covered = !sub.needsResync && Number.isInteger(seq) && seq <= sub.seq && seq >= 0 && (seq === sub.seq || oldest <= seq + 1);
    if (!covered) {
      this.metrics.resyncs.inc({ reason: sub.needsResync ? 'slow_consumer' : 'history' });
      sub.needsResync = false;
      return { kind: 'resync', snapshot: this.snapshotOf(sub) };
    }
    const missed = sub.history.filter((h) => h.diff.seq > seq).map((h) => h.diff);
    return { kind: 'resumed', subscriptionId: sub.id, seq: sub.seq, total: sub.cohort.query.total, missed };
  }

  /** The dashboard went away: keep the subscription for resume, within the history age. */
  detach(subscriptionId: string, sink: DiffSink): void {
    const sub = this.subscriptions.get(subscriptionId);
    // A newer connection may have resumed it already: only its own sink may detach it.
    if (!sub || sub.sink !== sink) return;
    sub.sink = undefined;
    sub.detachedAt = Date.now();
    this.projectEntry(sub.cohort.projectKey).detached.add(sub);
  }

  unsubscribe(subscriptionId: string): boolean {
    const sub = this.subscriptions.get(subscriptionId);
    if (!sub) return false;
    this.subscriptions.delete(subscriptionId);
    const cohort = sub.cohort;
    cohort.subscriptions.delete(sub);
    const project = this.projectEntry(cohort.projectKey);
    project.subscriptions--;
    project.detached.delete(sub);
    const owned = (project.owners.get(sub.owner) ?? 1) - 1;
    if (owned === 0) project.owners.delete(sub.owner);
    else project.owners.set(sub.owner, owned);
    if (cohort.subscriptions.size === 0) {
      this.cohorts.delete(cohort.key);
      this.dirty.delete(cohort);
      project.cohorts.delete(cohort);
    }
    if (project.subscriptions === 0 && project.cohorts.size === 0) this.byProject.delete(cohort.projectKey);
    this.metrics.subscriptions.set(this.subscriptions.size);
    this.metrics.subscriptionCohorts.set(this.cohorts.size);
    return true;
  }

  /** Sends every pending diff now. */
  flush(): void {
    this.clearTimer();
    for (const cohort of [...this.dirty]) this.flushCohort(cohort);
  }

  close(): void {
    this.flush();
    this.unlisten();
    clearInterval(this.sweeper);
  }

  private onChange(change: SessionChange): void {
    const project = this.byProject.get(change.projectKey);
    if (!project) return;
    let dueAt = Number.POSITIVE_INFINITY;
    // One clock read per change, taken only when a cohort turns dirty.
    let now: number | undefined;
    for (const cohort of project.cohorts) {
      if (!cohort.query.apply(change)) continue;
      if (!this.dirty.has(cohort)) {
        now ??= performance.now();
        cohort.dirtySince = now;
        cohort.dueAt = diffDueAt(now, cohort.sentAt, this.limits.diffWindowMs);
        this.dirty.add(cohort);
      }
      dueAt = Math.min(dueAt, cohort.dueAt);
    }
    this.wakeAt(dueAt);
  }

  /** Makes the timer fire by `at` (performance.now()); a timer due sooner is kept. */
  private wakeAt(at: number): void {
    if (at === Number.POSITIVE_INFINITY || at >= this.timerAt) return;
    this.clearTimer();
    this.timerAt = at;
    // Even a change due now waits for a timer: the rest of this turn's changes join its diff.
    this.timer = setTimeout(this.flushDue, Math.max(0, at - performance.now()));
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
  }

  /** Sends the cohorts that are due, and sets the timer for the next one. */
  private readonly flushDue = (): void => {
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
    // Timers run on the loop's millisecond clock: one a fraction of a millisecond early is due.
    const now = performance.now() + 1;
    let next = Number.POSITIVE_INFINITY;
    for (const cohort of [...this.dirty]) {
      if (cohort.dueAt <= now) this.flushCohort(cohort);
      else next = Math.min(next, cohort.dueAt);
    }
    this.wakeAt(next);
  };

  private flushCohort(cohort: Cohort): void {
    if (!this.dirty.delete(cohort)) return;
    const diff = cohort.query.takeDiff();
    const since = cohort.dirtySince;
    cohort.dirtySince = undefined;
    if (!diff) return;
    cohort.sentAt = performance.now();
    const now = Date.now();
    for (const sub of cohort.subscriptions) {
      if (sub.needsResync) continue;
      const message: SessionsDiff = { subscriptionId: sub.id, seq: ++sub.seq, ...diff };
      this.remember(sub, message, now);
      if (!sub.sink) continue;
      if (sub.sink.deliver(message)) {
        this.metrics.diffsSent.inc();
      } else {
        sub.needsResync = true;
        sub.history.length = 0;
        this.metrics.resyncs.inc({ reason: 'slow_consumer' });
        sub.sink.resync(sub.id, 'the dashboard did not read its diffs fast enough');
      }
    }
    this.metrics.diffSessions.observe(diff.added.length + diff.updated.length + diff.removed.length);
    if (since !== undefined) this.metrics.diffLatency.observe((performance.now() - since) / 1000);
  }

  private remember(sub: Subscription, diff: SessionsDiff, now: number): void {
    if (this.limits.historySize === 0) return;
    sub.history.push({ diff, at: now });
    while (sub.history.length > this.limits.historySize) sub.history.shift();
  }

  private snapshotOf(sub: Subscription): Snapshot {
    this.flushCohort(sub.cohort);
    const { total, sessions } = sub.cohort.query.snapshot();
    // A snapshot is a new base: older diffs must not be replayed on top of it.
    sub.history.length = 0;
    return { subscriptionId: sub.id, seq: sub.seq, total, sessions };
  }

  private cohortFor(projectKey: string, params: LiveQueryParams): Cohort {
    const key = `${projectKey}\0${params.limit}\0${queryKey(params)}`;
    let cohort = this.cohorts.get(key);
    if (!cohort) {
      cohort = { key, projectKey, query: new LiveQuery(params, this.index.sessions(projectKey)), subscriptions: new Set(), dirtySince: undefined, sentAt: Number.NEGATIVE_INFINITY, dueAt: Number.POSITIVE_INFINITY };
      this.cohorts.set(key, cohort);
      this.projectEntry(projectKey).cohorts.add(cohort);
      this.metrics.subscriptionCohorts.set(this.cohorts.size);
    }
    return cohort;
  }

  private projectEntry(projectKey: string): ProjectEntry {
    let entry = this.byProject.get(projectKey);
    if (!entry) {
      entry = { cohorts: new Set(), subscriptions: 0, owners: new Map(), detached: new Set() };
      this.byProject.set(projectKey, entry);
    }
    return entry;
  }

  /** Drops detached subscriptions past the history age and diffs older than it. */
  private sweep(): void {
    const now = Date.now();
    for (const sub of [...this.subscriptions.values()]) {
      if (sub.detachedAt !== undefined && now - sub.detachedAt > this.limits.historyAgeMs) {
        this.unsubscribe(sub.id);
        continue;
      }
      while (sub.history.length > 0 && now - (sub.history[0] as { at: number }).at > this.limits.historyAgeMs) sub.history.shift();
    }
  }
}
