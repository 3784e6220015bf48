/**
 * The console's pure logic, no DOM: the query and its URL form, the REST curl commands, what
 * changed between two renders, time-live text, and the chart's samples and path. Unit-tested in
 * test/console.model.test.ts; main.tsx draws with it.
 */
import type { DashboardQuery, Session } from '../src/client/index';

export type Operator = 'is' | 'contains';
export type Order = 'ASC' | 'DESC';

/** One filter row as the form edits it (REST grammar: type, operator, values, metadata source). */
export interface FilterRow {
  type: string;
  operator: Operator;
  /** The metadata key, for METADATA filters. */
  source: string;
  values: string[];
}

/** What the console shows: a project and its query; kept in the page's URL (never the key). */
export interface ConsoleQuery {
  project: string;
  filters: FilterRow[];
  sort: string;
  order: Order;
  limit: number;
}

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 200;

export function defaultQuery(project = ''): ConsoleQuery {
  return { project, filters: [], sort: 'timestamp', order: 'DESC', limit: DEFAULT_LIMIT };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Filters from the URL's `filters` parameter (the REST body's JSON); anything malformed is dropped. */
function readFilters(text: string | null): FilterRow[] {
  if (!text) return [];
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return [];
  }
  if (!Array.isArray(raw)) return [];
  return raw.filter(isRecord).map((f) => ({
    type: typeof f.type === 'string' ? f.type.toUpperCase() : 'USERID',
    operator: f.operator === 'is' ? 'is' : 'contains',
    source: typeof f.source === 'string' ? f.source : '',
    values: (Array.isArray(f.value) ? f.value : typeof f.value === 'string' ? [f.value] : []).filter((v): v is string => typeof v === 'string'),
  }));
}

/** The query a URL's query string describes (`?project=…&filters=[…]&sort=…&order=…&limit=…`). */
export function readQuery(search: string): ConsoleQuery {
  const params = new URLSearchParams(search);
  const query = defaultQuery(params.get('project') ?? '');
  query.filters = readFilters(params.get('filters'));
  const sort = params.get('sort');
  if (sort) query.sort = sort;
  if (params.get('order')?.toUpperCase() === 'ASC') query.order = 'ASC';
  const limit = Number(params.get('limit'));
  if (Number.isInteger(limit) && limit >= 1 && limit <= MAX_LIMIT) query.limit = limit;
  return query;
}

/** The REST grammar's filters for a query (rows with no type are left out). */
export function restFilters(query: ConsoleQuery): NonNullable<DashboardQuery['filters']> {
  return query.filters
    .filter((f) => f.type !== '')
    .map((f) => ({ type: f.type, operator: f.operator, value: f.values, ...(f.type === 'METADATA' ? { source: f.source } : {}) }));
}

/** The URL query string for a query: shareable, and holding no secret. */
export function writeQuery(query: ConsoleQuery): string {
  const params = new URLSearchParams();
  params.set('project', query.project);
  const filters = restFilters(query);
  if (filters.length > 0) params.set('filters', JSON.stringify(filters));
  params.set('sort', query.sort);
  params.set('order', query.order);
  params.set('limit', String(query.limit));
  return `?${params.toString()}`;
}

/** The `/dashboard` subscription for a query. */
export function toSubscription(query: ConsoleQuery): DashboardQuery {
  return { projectKey: query.project, filters: restFilters(query), sort: query.sort, order: query.order, limit: query.limit };
}

/** Quotes a word for a POSIX shell. */
export function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/** The REST search that returns what the list shows (the key is read from $HUB_API_KEY, never written out). */
export function curlForQuery(origin: string, query: ConsoleQuery): string {
  const body = { filters: restFilters(query), sort: query.sort, order: query.order, limit: query.limit, page: 1 };
  const url = `${origin}/api/v1/${encodeURIComponent(query.project)}/assist/sessions`;
  return `curl -s -H "Authorization: $HUB_API_KEY" -H 'Content-Type: application/json' \\\n  -d ${shellQuote(JSON.stringify(body))} \\\n  ${shellQuote(url)}`;
}

/** The REST request for one session. */
export function curlForSession(origin: string, project: string, sessionId: string): string {
  const url = `${origin}/api/v1/${encodeURIComponent(project)}/assist/sessions/${encodeURIComponent(sessionId)}`;
  return `curl -s -H "Authorization: $HUB_API_KEY" ${shellQuote(url)}`;
}

export type ChangeKind = 'added' | 'updated' | 'removed';

/**
 * What changed from the rows drawn before to the view now: sessions that appeared, left, or whose
 * data differ. Works alike for a diff and for a fresh snapshot after a resync.
 */
export function compareViews(before: ReadonlyMap<string, Session>, after: readonly Session[]): Map<string, ChangeKind> {
  const changes = new Map<string, ChangeKind>();
  const seen = new Set<string>();
  for (const s of after) {
    seen.add(s.sessionID);
    const old = before.get(s.sessionID);
    if (!old) changes.set(s.sessionID, 'added');
    else if (old !== s && JSON.stringify(old) !== JSON.stringify(s)) changes.set(s.sessionID, 'updated');
  }
  for (const id of before.keys()) if (!seen.has(id)) changes.set(id, 'removed');
  return changes;
}

/** How long a session has been live: `42s`, `5m 03s`, `2h 07m`, `3d 4h`. */
export function timeLive(now: number, since: number): string {
  const s = Math.max(0, Math.floor((now - since) / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

/** OS, browser and device in one line. */
export function describeDevice(s: Session): string {
  const browser = [s.userBrowser, s.userBrowserVersion?.split('.')[0]].filter(Boolean).join(' ');
  const device = s.userDevice ? `${s.userDevice} (${s.userDeviceType})` : s.userDeviceType;
  return [s.userOs, browser, device].filter(Boolean).join(' · ') || '—';
}

export interface Sample {
  /** ms since the epoch */
  t: number;
  total: number;
}

/** Appends a total (replacing one at the same instant) and drops what the window no longer shows, but the last before it. */
export function addSample(samples: readonly Sample[], sample: Sample, windowMs: number): Sample[] {
  const kept = samples.filter((s) => s.t < sample.t);
  kept.push(sample);
  const start = sample.t - windowMs;
  // From the last sample at or before the window's start (it gives the line's left end).
  const after = kept.findIndex((s, i) => i > 0 && s.t > start);
  return kept.slice((after < 0 ? kept.length : after) - 1);
}

/**
 * The chart's line: a step path (the total holds until the next diff) across `width` for the
 * window ending `now`, scaled so that `max` is the top. Empty when there is no sample.
 */
export function chartPath(samples: readonly Sample[], now: number, windowMs: number, width: number, height: number, max: number): string {
  const [first] = samples;
  if (!first) return '';
  const start = now - windowMs;
  const x = (t: number) => Math.round(((Math.max(t, start) - start) / windowMs) * width * 10) / 10;
  const y = (total: number) => Math.round((height - (max > 0 ? (total / max) * height : 0)) * 10) / 10;
  let path = `M${x(first.t)} ${y(first.total)}`;
  for (const s of samples.slice(1)) path += ` H${x(s.t)} V${y(s.total)}`;
  return `${path} H${width}`;
}

/** The area under `chartPath`'s line, down to the axis at `height`. */
export function chartArea(line: string, height: number): string {
  const start = /^M([\d.]+) ([\d.]+)/.exec(line);
  if (!start) return '';
  return `M${start[1]} ${height} V${start[2]}${line.slice(start[0].length)} V${height} Z`;
}

/** A round top for the chart's scale: 1, 2, 5, 10, 20, 50, ... at or above the peak. */
export function niceMax(peak: number): number {
  if (peak <= 1) return 1;
  const base = 10 ** Math.floor(Math.log10(peak));
  for (const step of [1, 2, 5, 10]) if (step * base >= peak) return step * base;
  return 10 * base;
}

/** A session's fields in a stable order for the panel: the well-known ones first, extra tracker fields after. */
export function sessionFields(s: Session): [string, string][] {
  const known = [
    'sessionID', 'userID', 'userUUID', 'userAnonymousId', 'pageTitle', 'active', 'live', 'timestamp', 'userOs',
    'userBrowser', 'userBrowserVersion', 'userDevice', 'userDeviceType', 'userCountry', 'userState', 'userCity',
    'metadata', 'tabIds', 'tabId', 'projectKey', 'projectId', 'revID', 'trackerVersion', 'isSnippet', 'assistOnly',
  ];
  const keys = [...known.filter((k) => k in s), ...Object.keys(s).filter((k) => !known.includes(k)).sort()];
  return keys.map((k) => {
    const v = s[k];
    if (k === 'timestamp' && typeof v === 'number') return [k, `${v} (${new Date(v).toISOString()})`];
    return [k, v === null || v === undefined ? '—' : typeof v === 'string' ? v : JSON.stringify(v)];
  });
}
