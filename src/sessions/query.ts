/**
 * The search grammar shared by REST and live subscriptions: parsing (with a clear message per bad
 * field), the filter matcher and the sort order. Pure: no I/O, no state.
 */
import { z } from 'zod';
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

/** Attributes a search may sort by (lower-cased name -> attribute). */
const SORTABLE: ReadonlyMap<string, keyof Session> = new Map(
  (
    [
      'timestamp', 'sessionID', 'userID', 'userUUID', 'userAnonymousId', 'userOs', 'userBrowser',
      'userBrowserVersion', 'userDevice', 'userDeviceType', 'userCountry', 'userState', 'userCity',
      'pageTitle', 'revID', 'trackerVersion', 'projectId', 'active', 'isSnippet', 'assistOnly',
    ] as const
  ).map((name) => [name.toLowerCase(), name]),
);

/** The attribute a sort name stands for (case-insensitive), or undefined when it cannot be sorted by. */
export function sortAttribute(name: string): keyof Session | undefined {
  return SORTABLE.get(name.toLowerCase());
}

export type Operator = 'is' | 'contains';
export type SortOrder = 'ASC' | 'DESC';

/** A parsed filter: the attribute to read and lower-cased values to compare with. */
export interface Filter {
  type: FilterType;
  /** The session attribute, or the metadata key when type is METADATA. */
  attribute: string;
  isMetadata: boolean;
  operator: Operator;
  /** Lower-cased; empty means "has this attribute" (present and non-empty). */
  values: string[];
}

export interface SearchQuery {
  filters: Filter[];
  sort: keyof Session;
  order: SortOrder;
  page: number;
  limit: number;
}

const filterSchema = z
  .object({
    type: z
      .string({ error: 'type is required (a string such as USERID or METADATA)' })
      .transform((t) => t.toUpperCase())
      .refine((t): t is FilterType => t in FILTER_ATTRIBUTES, {
        message: `unknown filter type; expected one of ${Object.keys(FILTER_ATTRIBUTES).join(', ')}`,
      }),
    value: z
      .union([
        z.string().max(QUERY_LIMITS.maxValueLength),
        z.array(z.string().max(QUERY_LIMITS.maxValueLength)).max(QUERY_LIMITS.maxValuesPerFilter),
      ])
      .optional(),
    source: z.string().max(QUERY_LIMITS.maxValueLength).optional().nullable(),
    operator: z.enum(['is', 'contains'], { error: 'operator must be "is" or "contains"' }).optional(),
  })
  .superRefine((f, ctx) => {
    if (f.type === 'METADATA' && !f.source) {
      ctx.addIssue({ code: 'custom', path: ['source'], message: 'METADATA filters need a non-empty source (the metadata key)' });
    }
  });

/** A number, or its decimal digits as text (query-string parameters are text); nothing else. */
const wholeNumber = z.union([z.number(), z.string().regex(/^\d{1,9}$/, 'expected an integer').transform(Number)], {
  error: 'expected an integer',
});

export const searchBodySchema = z
  .object({
    filters: z.array(filterSchema).max(QUERY_LIMITS.maxFilters).optional(),
    sort: z
      .string()
      .optional()
      .refine((s) => s === undefined || SORTABLE.has(s.toLowerCase()), {
        message: `cannot sort by that attribute; expected one of ${[...SORTABLE.values()].join(', ')}`,
      }),
    order: z
      .string()
      .optional()
      .refine((o) => o === undefined || /^(asc|desc)$/i.test(o), { message: 'order must be ASC or DESC' }),
    page: wholeNumber.pipe(z.number().int().min(1).max(QUERY_LIMITS.maxPage)).optional(),
    limit: wholeNumber.pipe(z.number().int().min(1).max(QUERY_LIMITS.maxLimit)).optional(),
  })
  .loose();

export type SearchBody = z.input<typeof searchBodySchema>;

/** A refusal says whether a filter is at fault (INVALID_FILTER) or the rest of the body (BAD_REQUEST). */
export type ParseResult<T> = { ok: true; value: T } | { ok: false; message: string; filterError: boolean };

/** Formats zod issues as "field.path: reason; ..." so a 400 names the field and the reason. */
export function describeIssues(error: z.ZodError, prefix = ''): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => {
      const path = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join('; ');
}

/** Parses a REST search body or a subscription's query. Unknown fields are ignored. */
export function parseSearchQuery(input: unknown): ParseResult<SearchQuery> {
  if (input === undefined || input === null) input = {};
  if (typeof input !== 'object' || Array.isArray(input)) {
    return { ok: false, message: 'body: expected a JSON object', filterError: false };
  }
  const parsed = searchBodySchema.safeParse(input);
  if (!parsed.success) {
    return { ok: false, message: describeIssues(parsed.error), filterError: parsed.error.issues.some((i) => i.path[0] === 'filters') };
  }
  const body = parsed.data;
  const filters: Filter[] = (body.filters ?? []).map((f) => {
    const values = f.value === undefined ? [] : Array.isArray(f.value) ? f.value : [f.value];
    const isMetadata = f.type === 'METADATA';
    return {
      type: f.type,
      attribute: isMetadata ? (f.source as string) : FILTER_ATTRIBUTES[f.type],
      isMetadata,
      operator: f.operator ?? 'contains',
      values: [...new Set(values.map((v) => v.toLowerCase()))],
    };
  });
  return {
    ok: true,
    value: {
      filters,
      sort: SORTABLE.get((body.sort ?? 'timestamp').toLowerCase()) as keyof Session,
      order: (body.order ?? 'DESC').toUpperCase() as SortOrder,
      page: body.page ?? 1,
      limit: body.limit ?? QUERY_LIMITS.maxLimit,
    },
  };
}

/** A stable string for a query's matching and ordering (not its page): equal strings, equal results. */
export function queryKey(query: Pick<SearchQuery, 'filters' | 'sort' | 'order'>): string {
  const filters = query.filters
    .map((f) => [f.type === 'PLATFORM' ? 'USERDEVICETYPE' : f.type, f.attribute, f.operator, [...f.values].sort()])
    .map((f) => JSON.stringify(f))
    .sort();
  return JSON.stringify([filters, query.sort, query.order]);
}

/** The attribute's value as a lower-cased string, or undefined when absent or empty. */
export function attributeText(session: Session, filter: Pick<Filter, 'attribute' | 'isMetadata'>): string | undefined {
  const raw = filter.isMetadata ? session.metadata?.[filter.attribute] : session[filter.attribute];
  return normalizeText(raw);
}

export function normalizeText(raw: unknown): string | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw === 'string') return raw === '' ? undefined : raw.toLowerCase();
  if (typeof raw === 'number' || typeof raw === 'boolean') return String(raw).toLowerCase();
  return undefined;
}

export function matchesFilter(session: Session, filter: Filter): boolean {
  const text = attributeText(session, filter);
  if (text === undefined) return false;
  if (filter.values.length === 0) return true;
  if (filter.operator === 'is') return filter.values.includes(text);
  return filter.values.some((v) => text.includes(v));
}

export function matchesAll(session: Session, filters: readonly Filter[]): boolean {
  for (const f of filters) if (!matchesFilter(session, f)) return false;
  return true;
}

type SortKey = number | string | undefined;

/** The value a session sorts by: numbers as numbers, booleans as 0/1, text lower-cased. */
export function sortKeyOf(session: Session, attribute: keyof Session): SortKey {
  const raw = session[attribute];
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

export function compareSessions(a: Session, b: Session, sort: keyof Session, order: SortOrder): number {
  return compareKeys(sortKeyOf(a, sort), a.sessionID, sortKeyOf(b, sort), b.sessionID, order);
}
