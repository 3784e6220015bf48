/**
 * The search grammar shared by REST and live subscriptions: parsing (with a clear message per bad
 * field), the filter matcher and the sort order. Pure: no I/O, no state.
 */
import { z } from 'zod';
import { FILTER_ATTRIBUTES, type FilterType, type Operator, QUERY_LIMITS, SORTABLE, type SortField, type SortOrder, sortFieldOf } from './grammar';
import { readableIssues } from '../validation';
import type { Session } from './model';

// The vocabulary and the order live in grammar.ts (no dependency: the browser client uses them too).
export { FILTER_ATTRIBUTES, type FilterType, type Operator, QUERY_LIMITS, SORTABLE_ATTRIBUTES, type SortField, type SortOrder, compareKeys, compareSessions, sortFieldOf, sortKeyOf } from './grammar';

/** The attribute a sort name stands for (case-insensitive), or undefined when it cannot be sorted by. */
export function sortAttribute(name: string): keyof Session | undefined {
  return SORTABLE.get(name.toLowerCase());
}

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
  sort: SortField;
  order: SortOrder;
  page: number;
  limit: number;
}

/** A filter's fields (the strict and the lenient schema share them). */
const filterShape = {
  type: z
    .string({ error: 'type is required (a string such as USERID or METADATA)' })
    .transform((t) => t.toUpperCase())
    .refine((t): t is FilterType => t in FILTER_ATTRIBUTES, {
      message: `unknown filter type; expected one of ${Object.keys(FILTER_ATTRIBUTES).join(', ')}`,
    })
    .meta({ description: 'the attribute to filter on (case-insensitive)', examples: ['USERID', 'METADATA'] }),
  value: z
    .union([
      z.string().max(QUERY_LIMITS.maxValueLength),
      z.array(z.string().max(QUERY_LIMITS.maxValueLength)).max(QUERY_LIMITS.maxValuesPerFilter),
    ], {
      error: `must be a string or an array of at most ${QUERY_LIMITS.maxValuesPerFilter} strings, each at most ${QUERY_LIMITS.maxValueLength} characters`,
    })
    .optional()
    .meta({ description: 'values matched case-insensitively, any one may match; [] means "has this attribute"' }),
  source: z.string().max(QUERY_LIMITS.maxValueLength).optional().nullable().meta({ description: 'the metadata key (METADATA filters only, required there)' }),
  operator: z.enum(['is', 'contains'], { error: 'operator must be "is" or "contains"' }).optional().meta({ description: 'default contains' }),
};

function metadataNeedsSource(f: { type: FilterType; source?: string | null }, ctx: z.RefinementCtx): void {
  if (f.type === 'METADATA' && !f.source) {
    ctx.addIssue({ code: 'custom', path: ['source'], message: 'METADATA filters need a non-empty source (the metadata key)' });
  }
}

const filterSchema = z.object(filterShape).superRefine(metadataNeedsSource);
const strictFilterSchema = z.strictObject(filterShape).superRefine(metadataNeedsSource);

/** An integer from min to max, or its decimal digits as text (query-string parameters are text); nothing else. */
function wholeNumber(min: number, max: number) {
  const n = z.number().int().min(min).max(max);
  return z.union([n, z.string().regex(/^\d{1,9}$/, 'must be an integer').transform(Number).pipe(n)]);
}

/** The fields of a search other than its filters (the list's query string takes them too). */
export const searchOptionShape = {
  sort: z
    .string()
    .optional()
    .refine((s) => s === undefined || sortFieldOf(s) !== undefined, {
      message: `cannot sort by that attribute; expected one of ${[...SORTABLE.values()].join(', ')}, or metadata.<key>`,
    })
    .meta({ description: 'attribute to sort by, case-insensitive (default timestamp), or metadata.<key> to sort by a metadata value', examples: ['timestamp', 'metadata.plan'] }),
  order: z
    .string()
    .optional()
    .refine((o) => o === undefined || /^(asc|desc)$/i.test(o), { message: 'order must be ASC or DESC' })
    .meta({ description: 'ASC or DESC, case-insensitive (default DESC)' }),
  page: wholeNumber(1, QUERY_LIMITS.maxPage)
    .optional()
    .meta({ description: `page number, an integer from 1 to ${QUERY_LIMITS.maxPage} (default 1)` }),
  limit: wholeNumber(1, QUERY_LIMITS.maxLimit)
    .optional()
    .meta({ description: `sessions per page, an integer from 1 to ${QUERY_LIMITS.maxLimit} (default ${QUERY_LIMITS.maxLimit})` }),
};

/** A search as live subscriptions take it: fields it does not know are ignored (a subscribe request carries more). */
export const searchBodySchema = z
  .object({
    filters: z.array(filterSchema).max(QUERY_LIMITS.maxFilters).optional(),
    ...searchOptionShape,
  })
  .loose();

/**
 * A search as the public REST API takes it: the same grammar, but an unknown field is refused: a
 * typo (`filter`, `limt`) would otherwise widen the search and answer 200 with the wrong sessions.
 */
export const strictSearchBodySchema = z
  .strictObject({
    filters: z
      .array(strictFilterSchema)
      .max(QUERY_LIMITS.maxFilters)
      .optional()
      .meta({ description: `filters, all must hold (at most ${QUERY_LIMITS.maxFilters})` }),
    ...searchOptionShape,
  });

export type SearchBody = z.input<typeof searchBodySchema>;

/** A refusal says whether a filter is at fault (INVALID_FILTER) or the rest of the body (BAD_REQUEST). */
export type ParseResult<T> = { ok: true; value: T } | { ok: false; message: string; filterError: boolean };

/** Zod issues as "field.path: reason; ..." so a 400 names the field and the reason. */
export function describeIssues(error: z.ZodError, prefix = ''): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => {
      const path = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
      return path ? `${path}: ${issue.message}` : issue.message;
    })
    .join('; ');
}

const readable = readableIssues();

/**
 * Parses a REST search body or a subscription's query. Unknown fields are ignored, or with
 * `strict` (the public REST API) refused, naming the field and the known one it is close to.
 */
export function parseSearchQuery(input: unknown, options: { strict?: boolean } = {}): ParseResult<SearchQuery> {
  if (input === undefined || input === null) input = {};
  if (typeof input !== 'object' || Array.isArray(input)) {
    return { ok: false, message: 'body: expected a JSON object', filterError: false };
  }
  const parsed = (options.strict ? strictSearchBodySchema : searchBodySchema).safeParse(input, { error: readable });
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
      sort: sortFieldOf(body.sort ?? 'timestamp') as SortField,
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
