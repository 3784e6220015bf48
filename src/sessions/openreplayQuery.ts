/**
 * OpenReplay's search grammar, as its backend sends it to the assist server's internal API
 * (api/chalicelib/core/assist.py), translated into the hub's own search grammar: a second front-end
 * on the one query model and search code, not a second engine. Pure: no I/O, no state.
 *
 * The body: `{"filter": {"<name>": {"values": [...], "operator": "is"|"contains"}, ...},
 * "pagination": {"limit": L, "page": P}, "sort": {"key": K, "order": "ASC"|"DESC"}}`, where a
 * name is a `schemas.LiveFilterType` value (userId, userOs, platform, ...) or, for any other
 * name, a metadata key. Where the reference server reads this grammar wrongly, the translation
 * follows what the backend means (docs/protocol-notes.md, "OpenReplay compatibility").
 */
import {
  FILTER_ATTRIBUTES,
  type FilterType,
  type ParseResult,
  QUERY_LIMITS,
  type SearchQuery,
  type SortField,
  type SortOrder,
  parseSearchQuery,
  sortFieldOf,
  sortAttribute,
} from './query';
import { isPlainObject } from './sessionData';

/** A filter of the hub's grammar (the public search body's `filters` items). */
interface PublicFilter {
  type: FilterType;
  source?: string;
  operator: 'is' | 'contains';
  value: string[];
}

/** The filter type an OpenReplay filter name stands for; any other name is a metadata key. */
export function filterTypeOf(name: string): { type: FilterType; source?: string } {
  const upper = name.toUpperCase();
  if (upper !== 'METADATA' && Object.hasOwn(FILTER_ATTRIBUTES, upper)) return { type: upper as FilterType };
  return { type: 'METADATA', source: name };
}

type Refusal = { ok: false; message: string; filterError: boolean };
const refuse = (message: string, filterError = true): Refusal => ({ ok: false, message, filterError });

function operatorOf(raw: unknown, where: string, fallback: 'is' | 'contains'): 'is' | 'contains' | Refusal {
  if (raw === undefined || raw === null) return fallback;
  if (typeof raw === 'string' && /^(is|contains)$/i.test(raw)) return raw.toLowerCase() as 'is' | 'contains';
  return refuse(`${where}: operator must be "is" or "contains"`);
}

/**
 * Values as text: one string (or number) is one value, never its characters; null entries are
 * skipped; "" is dropped (an empty value asks for nothing, as the backend drops empty filters).
 */
function valuesOf(raw: unknown, where: string): string[] | Refusal {
  const list = Array.isArray(raw) ? raw : raw === undefined || raw === null ? [] : [raw];
  if (list.length > QUERY_LIMITS.maxValuesPerFilter) return refuse(`${where}: at most ${QUERY_LIMITS.maxValuesPerFilter} values`);
  const out: string[] = [];
  for (const v of list) {
    if (v === null || v === undefined) continue;
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') return refuse(`${where}: values must be strings`);
    const text = String(v);
    if (text.length > QUERY_LIMITS.maxValueLength) return refuse(`${where}: values must be at most ${QUERY_LIMITS.maxValueLength} characters`);
    if (text !== '') out.push(text);
  }
  return out;
}

/** The `filter` object as the hub's filters; names whose values ask for nothing are left out. */
export function translateFilters(raw: unknown): PublicFilter[] | Refusal {
  if (raw === undefined || raw === null) return [];
  if (!isPlainObject(raw)) return refuse('filter: expected an object of filters by name');
  // The backend's own test search sends `{"uxtId": id, "operator": "is"}`: an `operator` next to
  // plain values is their operator (the reference reads it as a filter named "operator").
  const plainOperator = operatorOf(typeof raw.operator === 'string' ? raw.operator : undefined, 'filter', 'contains');
  if (typeof plainOperator !== 'string') return plainOperator;
  const filters: PublicFilter[] = [];
  for (const name of Object.keys(raw)) {
    const spec = raw[name];
    if (name === 'operator' && typeof spec === 'string') continue;
    const where = `filter.${name}`;
    if (name.length === 0 || name.length > QUERY_LIMITS.maxValueLength) return refuse(`${where}: a filter name is 1 to ${QUERY_LIMITS.maxValueLength} characters`);
    let values: string[] | Refusal;
    let operator: 'is' | 'contains' | Refusal;
    if (isPlainObject(spec)) {
      values = valuesOf(spec.values, `${where}.values`);
      operator = operatorOf(spec.operator, where, 'contains');
    } else {
      // The plain form `{"userId": "x"}` (the backend's search by user) and the 1.7 form `{"userId": ["x"]}`.
      values = valuesOf(spec, where);
      operator = plainOperator;
    }
    if (!Array.isArray(values)) return values;
    if (typeof operator !== 'string') return operator;
    if (values.length === 0) continue;
    filters.push({ ...filterTypeOf(name), operator, value: values });
    if (filters.length > QUERY_LIMITS.maxFilters) return refuse(`filter: at most ${QUERY_LIMITS.maxFilters} filters`);
  }
  return filters;
}

/** A positive integer (or its digits as text); null, 0 and absent are "not given", as the reference reads them. */
function pageNumber(raw: unknown, where: string, max: number): number | undefined | Refusal {
  if (raw === undefined || raw === null || raw === 0 || raw === '' || raw === '0') return undefined;
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d{1,9}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > max) return refuse(`${where}: expected an integer from 1 to ${max}`, false);
  return n;
}

/**
 * `sort` as the hub's sort and order. `duration` (the live list's default sort in OpenReplay's UI)
 * is the time since the session started: the reverse of `timestamp`. Any other name that is not a
 * session attribute is a metadata key (OpenReplay's UI offers the project's metadata keys as
 * sorts). No order is DESC, the backend's own default.
 */
export function translateSort(raw: unknown): { sort: SortField; order: SortOrder } | Refusal {
  if (raw !== undefined && raw !== null && !isPlainObject(raw)) return refuse('sort: expected {"key", "order"}', false);
  const key = raw?.key;
  const order = raw?.order;
  let desc = true;
  if (order !== undefined && order !== null && order !== '') {
    if (typeof order !== 'string' || !/^(asc|desc)$/i.test(order)) return refuse('sort.order: must be ASC or DESC', false);
    desc = order.toUpperCase() === 'DESC';
  }
  if (key !== undefined && key !== null && typeof key !== 'string') return refuse('sort.key: expected a string', false);
  const name = (key ?? '').toLowerCase();
  if (name === 'duration') return { sort: 'timestamp', order: desc ? 'ASC' : 'DESC' };
  const metadataSort = (key ?? '').length <= QUERY_LIMITS.maxValueLength ? sortFieldOf(`metadata.${key}`) : undefined;
  const field = name === '' || name === 'startts' ? 'timestamp' : (sortAttribute(name) ?? metadataSort ?? 'timestamp');
  return { sort: field, order: desc ? 'DESC' : 'ASC' };
}

/**
 * A `sockets-live` search (POST body, or `{}` for a GET) as the hub's query. `userId` is the GET's
 * `?userId=` (a `contains` filter, as the reference's list means it), added to the body's filters.
 * Without pagination the first page holds the most a page may (200).
 */
export function translateLiveSearch(body: unknown, userId?: string): ParseResult<SearchQuery> {
  if (body === undefined || body === null) body = {};
  if (!isPlainObject(body)) return refuse('body: expected a JSON object', false);
  const filters = translateFilters(body.filter);
  if (!Array.isArray(filters)) return filters;
  if (userId !== undefined && userId !== '') {
    const values = valuesOf(userId, 'userId');
    if (!Array.isArray(values)) return values;
    filters.push({ type: 'USERID', operator: 'contains', value: values });
  }
  const sort = translateSort(body.sort);
  if ('ok' in sort) return sort;
  const pagination = body.pagination;
  if (pagination !== undefined && pagination !== null && !isPlainObject(pagination)) return refuse('pagination: expected {"limit", "page"}', false);
  const limit = pageNumber(pagination?.limit, 'pagination.limit', Number.MAX_SAFE_INTEGER);
  if (typeof limit === 'object') return limit;
  const page = pageNumber(pagination?.page, 'pagination.page', QUERY_LIMITS.maxPage);
  if (typeof page === 'object') return page;
  return parseSearchQuery({
    filters,
    sort: sort.sort,
    order: sort.order,
    page: page ?? 1,
    // The backend asks for at most 200 (its schema's bound); a bigger limit gets pages of 200.
    limit: Math.min(limit ?? QUERY_LIMITS.maxLimit, QUERY_LIMITS.maxLimit),
  });
}
