/**
 * The search grammar's vocabulary and order, free of any dependency: filter types, sortable
 * attributes, limits, and the comparator of the search order. query.ts parses requests with them
 * on the server; the browser-safe dashboard client (src/client/) orders its view with them, so both
 * sides sort exactly alike.
 */
import type { Session } from './model';

export const QUERY_LIMITS = {
  maxFilters: 32,
  maxValuesPerFilter: 100,
  maxValueLength: 256,
  maxLimit: 200,
  maxPage: 100_000,
} as const;

/** Filter types (upper case, as on the wire) and the session attribute each one reads. */
export const FILTER_ATTRIBUTES = {
  USERID: 'userID',
  USEROS: 'userOs',
  USERBROWSER: 'userBrowser',
  USERBROWSERVERSION: 'userBrowserVersion',
  USERDEVICE: 'userDevice',
  USERDEVICETYPE: 'userDeviceType',
  PLATFORM: 'userDeviceType',
  USERCOUNTRY: 'userCountry',
  USERCITY: 'userCity',
  USERSTATE: 'userState',
  USERUUID: 'userUUID',
  USERANONYMOUSID: 'userAnonymousId',
  REVID: 'revID',
  PAGETITLE: 'pageTitle',
  SESSIONID: 'sessionID',
  TRACKERVERSION: 'trackerVersion',
  METADATA: 'metadata',
} as const satisfies Record<string, keyof Session>;
export type FilterType = keyof typeof FILTER_ATTRIBUTES;

/** Attributes a search may sort by, as spelled in answers. */
export const SORTABLE_ATTRIBUTES = [
  'timestamp', 'sessionID', 'userID', 'userUUID', 'userAnonymousId', 'userOs', 'userBrowser',
  'userBrowserVersion', 'userDevice', 'userDeviceType', 'userCountry', 'userState', 'userCity',
  'pageTitle', 'revID', 'trackerVersion', 'projectId', 'active', 'isSnippet', 'assistOnly',
] as const satisfies readonly (keyof Session)[];

/** Attributes a search may sort by (lower-cased name -> attribute): `sort` is case-insensitive. */
export const SORTABLE: ReadonlyMap<string, keyof Session> = new Map(SORTABLE_ATTRIBUTES.map((name) => [name.toLowerCase(), name]));

export type Operator = 'is' | 'contains';
export type SortOrder = 'ASC' | 'DESC';

/**
 * What a search sorts by: a session attribute, or a metadata key as `metadata.<key>` (OpenReplay's
 * live list offers the project's metadata keys as sorts; the key is matched as stored).
 */
export type SortField = keyof Session | `metadata.${string}`;
const METADATA_SORT = 'metadata.';

/** The sort field a name stands for (attributes case-insensitively), or undefined when none. */
export function sortFieldOf(name: string): SortField | undefined {
  if (name.startsWith(METADATA_SORT)) {
    const key = name.slice(METADATA_SORT.length);
    return key.length > 0 && key.length <= QUERY_LIMITS.maxValueLength ? `metadata.${key}` : undefined;
  }
  return SORTABLE.get(name.toLowerCase());
}

type SortKey = number | string | undefined;

/** The value a session sorts by: numbers as numbers, booleans as 0/1, text lower-cased. */
export function sortKeyOf(session: Session, field: SortField): SortKey {
  const name = field as string;
  const raw = name.startsWith(METADATA_SORT) ? session.metadata[name.slice(METADATA_SORT.length)] : session[name];
  if (typeof raw === 'number') return raw;
  if (typeof raw === 'boolean') return raw ? 1 : 0;
  if (typeof raw === 'string') return raw === '' ? undefined : raw.toLowerCase();
  return undefined;
}

/**
 * Total order of the search: by the sort key in the asked order, absent values last in either
 * order, numbers before text, ties broken by sessionID ascending so pages never overlap.
 */
export function compareKeys(a: SortKey, aId: string, b: SortKey, bId: string, order: SortOrder): number {
  if (a !== b) {
    if (a === undefined) return 1;
    if (b === undefined) return -1;
    const aNum = typeof a === 'number';
    const bNum = typeof b === 'number';
    if (aNum !== bNum) return aNum ? -1 : 1;
    const c = a < b ? -1 : a > b ? 1 : 0;
    if (c !== 0) return order === 'ASC' ? c : -c;
  }
  return aId < bId ? -1 : aId > bId ? 1 : 0;
}

export function compareSessions(a: Session, b: Session, sort: SortField, order: SortOrder): number {
  return compareKeys(sortKeyOf(a, sort), a.sessionID, sortKeyOf(b, sort), b.sessionID, order);
}
