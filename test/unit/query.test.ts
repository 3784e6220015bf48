import {
  FILTER_ATTRIBUTES,
  type Filter,
  type FilterType,
  QUERY_LIMITS,
  type SortField,
  compareSessions,
  matchesAll,
  matchesFilter,
  queryKey,
} from '../../src/sessions/query';
import type { Session } from '../../src/sessions/model';
import { SPEC_EXAMPLE_SEARCH, makeSession, query, refusal } from '../support/sessions';

/** The one filter of a parsed single-filter query. */
function filter(body: Record<string, unknown>): Filter {
  const q = query({ filters: [body] });
  expect(q.filters).toHaveLength(1);
  return q.filters[0] as Filter;
}

describe('parseSearchQuery: defaults and accepted forms', () => {
  it('fills every default for an empty body, undefined and null', () => {
    const expected = { filters: [], sort: 'timestamp', order: 'DESC', page: 1, limit: 200 };
    expect(query({})).toEqual(expected);
    expect(query(undefined)).toEqual(expected);
    expect(query(null)).toEqual(expected);
  });

  it('refuses a body that is not an object', () => {
    expect(refusal([])).toMatch(/body/);
    expect(refusal('filters')).toMatch(/body/);
    expect(refusal(42)).toMatch(/body/);
  });

  it('accepts order in any case and normalises it', () => {
    expect(query({ order: 'asc' }).order).toBe('ASC');
    expect(query({ order: 'Asc' }).order).toBe('ASC');
    expect(query({ order: 'desc' }).order).toBe('DESC');
    expect(refusal({ order: 'up' })).toMatch(/^order: /);
  });

  it('accepts sort in any case and maps it to the attribute name', () => {
    expect(query({ sort: 'TIMESTAMP' }).sort).toBe('timestamp');
    expect(query({ sort: 'userid' }).sort).toBe('userID');
    expect(query({ sort: 'usercountry' }).sort).toBe('userCountry');
    expect(refusal({ sort: 'password' })).toMatch(/^sort: /);
  });

  it('accepts metadata.<key> as a sort, the key as stored', () => {
    expect(query({ sort: 'metadata.plan' }).sort).toBe('metadata.plan');
    expect(query({ sort: 'metadata.Plan' }).sort).toBe('metadata.Plan');
    expect(refusal({ sort: 'metadata.' })).toMatch(/^sort: .*metadata\.<key>/);
    expect(refusal({ sort: `metadata.${'k'.repeat(300)}` })).toMatch(/^sort: /);
  });

  it('accepts the filter type in any case', () => {
    expect(filter({ type: 'userId', value: ['x'] })).toMatchObject({ type: 'USERID', attribute: 'userID' });
    expect(filter({ type: 'usercountry', value: ['x'] })).toMatchObject({ type: 'USERCOUNTRY', attribute: 'userCountry' });
  });

  it('maps PLATFORM to userDeviceType', () => {
    expect(filter({ type: 'PLATFORM', value: ['mobile'] })).toMatchObject({ attribute: 'userDeviceType', isMetadata: false });
    expect(filter({ type: 'platform', value: ['mobile'] }).attribute).toBe('userDeviceType');
  });

  it('maps every filter type to the attribute it reads', () => {
    for (const [type, attribute] of Object.entries(FILTER_ATTRIBUTES)) {
      if (type === 'METADATA') continue;
      expect(filter({ type, value: ['v'] })).toMatchObject({ type, attribute, isMetadata: false });
    }
  });

  it('defaults the operator to contains and accepts is', () => {
    expect(filter({ type: 'USERID', value: ['a'] }).operator).toBe('contains');
    expect(filter({ type: 'USERID', value: ['a'], operator: 'is' }).operator).toBe('is');
    expect(filter({ type: 'USERID', value: ['a'], operator: 'contains' }).operator).toBe('contains');
  });

  it('accepts a single string value as a one-element array, lower-cased', () => {
    expect(filter({ type: 'USERID', value: 'OpenReplay' }).values).toEqual(['openreplay']);
  });

  it('lower-cases and de-duplicates values; a missing value means []', () => {
    expect(filter({ type: 'USERID', value: ['A', 'a', 'B'] }).values).toEqual(['a', 'b']);
    expect(filter({ type: 'USERID' }).values).toEqual([]);
    expect(filter({ type: 'USERID', value: [] }).values).toEqual([]);
  });

  it('takes METADATA source as the attribute, case kept', () => {
    expect(filter({ type: 'metadata', source: 'Plan', value: ['trial'] })).toMatchObject({
      type: 'METADATA',
      attribute: 'Plan',
      isMetadata: true,
    });
  });

  it('accepts page and limit at their bounds, and numeric strings', () => {
    expect(query({ page: 1, limit: 1 })).toMatchObject({ page: 1, limit: 1 });
    expect(query({ limit: 200 }).limit).toBe(200);
    expect(query({ page: '3', limit: '10' })).toMatchObject({ page: 3, limit: 10 });
  });

  it('ignores unknown fields of the body', () => {
    expect(query({ foo: 1, filters: [] }).filters).toEqual([]);
  });

  it('accepts the spec example', () => {
    const q = query(SPEC_EXAMPLE_SEARCH);
    expect(q).toEqual({
      filters: [
        { type: 'METADATA', attribute: 'plan', isMetadata: true, operator: 'is', values: ['trial', 'free'] },
        { type: 'USERID', attribute: 'userID', isMetadata: false, operator: 'contains', values: ['openreplay'] },
      ],
      sort: 'timestamp',
      order: 'DESC',
      limit: 10,
      page: 1,
    });
  });
});

describe('parseSearchQuery: refusals name the field', () => {
  it('takes page and limit as numbers or digit strings only', () => {
    expect(query({ page: '2', limit: '10' })).toMatchObject({ page: 2, limit: 10 });
    for (const bad of [true, [5], '5.5', ' 5', '0x10', '1e2', null]) {
      expect(refusal({ limit: bad })).toMatch(/^limit: /);
      expect(refusal({ page: bad })).toMatch(/^page: /);
    }
  });

  it('refuses an operator in the wrong case', () => {
    expect(refusal({ filters: [{ type: 'USERID', value: ['a'], operator: 'IS' }] })).toMatch(/^filters\.0\.operator: /);
    expect(refusal({ filters: [{ type: 'USERID', value: ['a'], operator: 'Contains' }] })).toMatch(/^filters\.0\.operator: /);
    expect(refusal({ filters: [{ type: 'USERID', value: ['a'], operator: 'equals' }] })).toMatch(/^filters\.0\.operator: /);
  });

  it('refuses METADATA without a source, naming filters.N.source', () => {
    expect(refusal({ filters: [{ type: 'METADATA', value: ['x'] }] })).toMatch(/filters\.0\.source: .*source/);
    const second = refusal({ filters: [{ type: 'USERID', value: ['a'] }, { type: 'METADATA', source: '', value: ['x'] }] });
    expect(second).toMatch(/filters\.1\.source: /);
    expect(refusal({ filters: [{ type: 'METADATA', source: null, value: ['x'] }] })).toMatch(/filters\.0\.source: /);
  });

  it('refuses an unknown type naming the field and listing the known ones', () => {
    const message = refusal({ filters: [{ type: 'PASSWORD', value: ['x'] }] });
    expect(message).toMatch(/^filters\.0\.type: /);
    expect(message).toContain('USERID');
    expect(refusal({ filters: [{ value: ['x'] }] })).toMatch(/^filters\.0\.type: /);
    expect(refusal({ filters: [{ type: 7, value: ['x'] }] })).toMatch(/^filters\.0\.type: /);
  });

  it('does not take Object.prototype names for filter types', () => {
    for (const type of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      expect(refusal({ filters: [{ type, value: ['x'] }] })).toMatch(/^filters\.0\.type: /);
    }
  });

  it('refuses limit 0, 201 and non-integers', () => {
    expect(refusal({ limit: 0 })).toMatch(/^limit: /);
    expect(refusal({ limit: 201 })).toMatch(/^limit: /);
    expect(refusal({ limit: 1.5 })).toMatch(/^limit: /);
    expect(refusal({ limit: 'ten' })).toMatch(/^limit: /);
    expect(refusal({ limit: -1 })).toMatch(/^limit: /);
  });

  it('refuses page 0, negative and non-integer pages', () => {
    expect(refusal({ page: 0 })).toMatch(/^page: /);
    expect(refusal({ page: -2 })).toMatch(/^page: /);
    expect(refusal({ page: 2.5 })).toMatch(/^page: /);
    expect(refusal({ page: QUERY_LIMITS.maxPage + 1 })).toMatch(/^page: /);
  });

  it('refuses too many filters', () => {
    const ok = Array.from({ length: QUERY_LIMITS.maxFilters }, () => ({ type: 'USERID', value: ['a'] }));
    expect(query({ filters: ok }).filters).toHaveLength(QUERY_LIMITS.maxFilters);
    expect(refusal({ filters: [...ok, { type: 'USERID', value: ['a'] }] })).toMatch(/^filters: /);
  });

  it('refuses too many values and too long values', () => {
    const values = Array.from({ length: QUERY_LIMITS.maxValuesPerFilter }, (_, i) => `v${i}`);
    expect(filter({ type: 'USERID', value: values }).values).toHaveLength(QUERY_LIMITS.maxValuesPerFilter);
    expect(refusal({ filters: [{ type: 'USERID', value: [...values, 'one-more'] }] })).toMatch(/^filters\.0\.value: /);
    expect(refusal({ filters: [{ type: 'USERID', value: ['x'.repeat(QUERY_LIMITS.maxValueLength + 1)] }] })).toMatch(/^filters\.0\.value/);
  });

  it('refuses values that are not strings', () => {
    expect(refusal({ filters: [{ type: 'USERID', value: [1] }] })).toMatch(/^filters\.0\.value/);
    expect(refusal({ filters: [{ type: 'USERID', value: { a: 1 } }] })).toMatch(/^filters\.0\.value/);
  });

  it('refuses filters that are not an array', () => {
    expect(refusal({ filters: { type: 'USERID' } })).toMatch(/^filters: /);
  });
});

describe('matchesFilter', () => {
  const full = makeSession({
    sessionID: '6975518573799938',
    userID: 'Alice@OpenReplay.com',
    userOs: 'Mac OS',
    userBrowser: 'Chrome',
    userBrowserVersion: '103.0.0.0',
    userDevice: 'iPhone',
    userDeviceType: 'mobile',
    userCountry: 'FR',
    userCity: 'Paris',
    userState: 'Ile-de-France',
    userUUID: '8998545b-553c-4f41-a39d-d7cba7fac2d1',
    userAnonymousId: 'anon-42',
    revID: 'rev-7',
    pageTitle: 'OpenReplay Blog',
    trackerVersion: '3.5.11',
    metadata: { plan: 'Trial', company: 'ACME' },
  });

  /** For each type: a value `is` matches, a substring `contains` matches, a value that matches neither. */
  const cases: [FilterType, string, string, string][] = [
    ['USERID', 'alice@openreplay.com', 'OPENREPLAY', 'bob'],
    ['USEROS', 'mac os', 'mac', 'windows'],
    ['USERBROWSER', 'CHROME', 'chro', 'firefox'],
    ['USERBROWSERVERSION', '103.0.0.0', '103.', '104'],
    ['USERDEVICE', 'iphone', 'phone', 'pixel'],
    ['USERDEVICETYPE', 'mobile', 'mob', 'desktop'],
    ['PLATFORM', 'Mobile', 'bile', 'tablet'],
    ['USERCOUNTRY', 'fr', 'F', 'de'],
    ['USERCITY', 'paris', 'ari', 'lyon'],
    ['USERSTATE', 'ile-de-france', 'france', 'bavaria'],
    ['USERUUID', '8998545B-553C-4F41-A39D-D7CBA7FAC2D1', '8998545b', 'ffff'],
    ['USERANONYMOUSID', 'anon-42', 'on-4', 'anon-43'],
    ['REVID', 'rev-7', 'v-7', 'rev-8'],
    ['PAGETITLE', 'openreplay blog', 'blog', 'docs'],
    ['SESSIONID', '6975518573799938', '55185', '1234'],
    ['TRACKERVERSION', '3.5.11', '3.5', '4.0'],
  ];

  it.each(cases)('%s: is matches the whole value, case-insensitively', (type, exact, part, other) => {
    expect(matchesFilter(full, filter({ type, value: [exact], operator: 'is' }))).toBe(true);
    expect(matchesFilter(full, filter({ type, value: [part], operator: 'is' }))).toBe(part.toLowerCase() === exact.toLowerCase());
    expect(matchesFilter(full, filter({ type, value: [other], operator: 'is' }))).toBe(false);
  });

  it.each(cases)('%s: contains matches a substring, case-insensitively', (type, exact, part, other) => {
    expect(matchesFilter(full, filter({ type, value: [part], operator: 'contains' }))).toBe(true);
    expect(matchesFilter(full, filter({ type, value: [exact] }))).toBe(true);
    expect(matchesFilter(full, filter({ type, value: [other] }))).toBe(false);
  });

  it.each(cases)('%s: a session passes if ANY value matches', (type, exact, part, other) => {
    expect(matchesFilter(full, filter({ type, value: [other, exact], operator: 'is' }))).toBe(true);
    expect(matchesFilter(full, filter({ type, value: [other, part], operator: 'contains' }))).toBe(true);
    expect(matchesFilter(full, filter({ type, value: [other, other + 'x'], operator: 'contains' }))).toBe(false);
  });

  it('METADATA reads the source key; both operators; case-insensitive values, case-sensitive key', () => {
    expect(matchesFilter(full, filter({ type: 'METADATA', source: 'plan', value: ['trial'], operator: 'is' }))).toBe(true);
    expect(matchesFilter(full, filter({ type: 'METADATA', source: 'plan', value: ['TRI'], operator: 'is' }))).toBe(false);
    expect(matchesFilter(full, filter({ type: 'METADATA', source: 'plan', value: ['TRI'] }))).toBe(true);
    expect(matchesFilter(full, filter({ type: 'METADATA', source: 'plan', value: ['free', 'trial'], operator: 'is' }))).toBe(true);
    expect(matchesFilter(full, filter({ type: 'METADATA', source: 'company', value: ['trial'] }))).toBe(false);
    expect(matchesFilter(full, filter({ type: 'METADATA', source: 'missing', value: ['trial'] }))).toBe(false);
    expect(matchesFilter(full, filter({ type: 'METADATA', source: 'Plan', value: ['trial'] }))).toBe(false);
  });

  it('METADATA on prototype names never matches', () => {
    for (const source of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      expect(matchesFilter(full, filter({ type: 'METADATA', source, value: [] }))).toBe(false);
      expect(matchesFilter(full, filter({ type: 'METADATA', source, value: ['function'] }))).toBe(false);
      expect(matchesFilter(full, filter({ type: 'METADATA', source, value: ['object'] }))).toBe(false);
    }
  });

  it('an empty value list means "has this attribute" (present and non-empty)', () => {
    const sparse = makeSession({ userID: '', userDevice: null, userCountry: 'DE', metadata: { plan: '', tier: 'gold' } });
    expect(matchesFilter(sparse, filter({ type: 'USERID', value: [] }))).toBe(false);
    expect(matchesFilter(sparse, filter({ type: 'USERID', value: [], operator: 'is' }))).toBe(false);
    expect(matchesFilter(sparse, filter({ type: 'USERDEVICE' }))).toBe(false);
    expect(matchesFilter(sparse, filter({ type: 'USERCOUNTRY', value: [] }))).toBe(true);
    expect(matchesFilter(sparse, filter({ type: 'USERCOUNTRY', value: [], operator: 'is' }))).toBe(true);
    expect(matchesFilter(sparse, filter({ type: 'METADATA', source: 'plan', value: [] }))).toBe(false);
    expect(matchesFilter(sparse, filter({ type: 'METADATA', source: 'tier', value: [] }))).toBe(true);
    expect(matchesFilter(sparse, filter({ type: 'METADATA', source: 'nothing', value: [] }))).toBe(false);
  });

  it('a missing attribute never matches a value, with either operator', () => {
    const sparse = makeSession({ userCity: null, userID: '' });
    expect(matchesFilter(sparse, filter({ type: 'USERCITY', value: ['paris'] }))).toBe(false);
    expect(matchesFilter(sparse, filter({ type: 'USERCITY', value: [''] }))).toBe(false);
    expect(matchesFilter(sparse, filter({ type: 'USERID', value: [''], operator: 'is' }))).toBe(false);
  });

  it('matchesAll needs every filter; no filter matches everything', () => {
    const a = filter({ type: 'USERCOUNTRY', value: ['fr'], operator: 'is' });
    const b = filter({ type: 'USERBROWSER', value: ['chrome'], operator: 'is' });
    const c = filter({ type: 'USERBROWSER', value: ['firefox'], operator: 'is' });
    expect(matchesAll(full, [a, b])).toBe(true);
    expect(matchesAll(full, [a, c])).toBe(false);
    expect(matchesAll(full, [c, a])).toBe(false);
    expect(matchesAll(full, [])).toBe(true);
    expect(matchesAll(makeSession(), [])).toBe(true);
  });
});

describe('queryKey', () => {
  const key = (body: unknown) => queryKey(query(body));

  it('is equal for value order, duplicate values, value case and type case', () => {
    expect(key({ filters: [{ type: 'USERID', value: ['a', 'b'] }] })).toBe(key({ filters: [{ type: 'userid', value: ['B', 'a', 'b'] }] }));
  });

  it('is equal for PLATFORM and USERDEVICETYPE', () => {
    expect(key({ filters: [{ type: 'PLATFORM', value: ['mobile'] }] })).toBe(key({ filters: [{ type: 'USERDEVICETYPE', value: ['mobile'] }] }));
  });

  it('is equal for filter order, default fields and sort/order spelling', () => {
    const f1 = { type: 'USERID', value: ['a'] };
    const f2 = { type: 'METADATA', source: 'plan', value: ['x'], operator: 'is' };
    expect(key({ filters: [f1, f2] })).toBe(key({ filters: [f2, f1], sort: 'TimeStamp', order: 'desc' }));
    expect(key({ filters: [{ ...f1, operator: 'contains' }] })).toBe(key({ filters: [f1] }));
  });

  it('ignores page and limit', () => {
    expect(key({ page: 1, limit: 10 })).toBe(key({ page: 7, limit: 200 }));
  });

  it('differs when matching or ordering differs', () => {
    const base = key({ filters: [{ type: 'USERID', value: ['a'] }] });
    expect(key({ filters: [{ type: 'USERID', value: ['a'], operator: 'is' }] })).not.toBe(base);
    expect(key({ filters: [{ type: 'USEROS', value: ['a'] }] })).not.toBe(base);
    expect(key({ filters: [{ type: 'USERID', value: ['b'] }] })).not.toBe(base);
    expect(key({ filters: [{ type: 'USERID', value: ['a', 'b'] }] })).not.toBe(base);
    expect(key({ filters: [{ type: 'USERID', value: ['a'] }], order: 'ASC' })).not.toBe(base);
    expect(key({ filters: [{ type: 'USERID', value: ['a'] }], sort: 'userID' })).not.toBe(base);
    expect(key({ filters: [{ type: 'METADATA', source: 'a', value: ['x'] }] })).not.toBe(key({ filters: [{ type: 'METADATA', source: 'b', value: ['x'] }] }));
  });
});

describe('compareSessions', () => {
  const sorted = (sessions: Session[], sort: SortField, order: 'ASC' | 'DESC') =>
    [...sessions].sort((a, b) => compareSessions(a, b, sort, order)).map((s) => s.sessionID);

  it('orders numbers numerically (not as text) in both orders', () => {
    const sessions = [
      makeSession({ sessionID: 'a', timestamp: 9 }),
      makeSession({ sessionID: 'b', timestamp: 100 }),
      makeSession({ sessionID: 'c', timestamp: 20 }),
    ];
    expect(sorted(sessions, 'timestamp', 'ASC')).toEqual(['a', 'c', 'b']);
    expect(sorted(sessions, 'timestamp', 'DESC')).toEqual(['b', 'c', 'a']);
  });

  it('orders text case-insensitively', () => {
    const sessions = [
      makeSession({ sessionID: '1', userID: 'bob' }),
      makeSession({ sessionID: '2', userID: 'Alice' }),
      makeSession({ sessionID: '3', userID: 'carol' }),
      makeSession({ sessionID: '4', userID: 'Bz' }),
    ];
    expect(sorted(sessions, 'userID', 'ASC')).toEqual(['2', '1', '4', '3']);
    expect(sorted(sessions, 'userID', 'DESC')).toEqual(['3', '4', '1', '2']);
  });

  it('puts missing values (null, empty) last in both orders', () => {
    const sessions = [
      makeSession({ sessionID: 'n1', userCountry: null }),
      makeSession({ sessionID: 'de', userCountry: 'DE' }),
      makeSession({ sessionID: 'n0', userCountry: '' }),
      makeSession({ sessionID: 'fr', userCountry: 'fr' }),
    ];
    expect(sorted(sessions, 'userCountry', 'ASC')).toEqual(['de', 'fr', 'n0', 'n1']);
    expect(sorted(sessions, 'userCountry', 'DESC')).toEqual(['fr', 'de', 'n0', 'n1']);
  });

  it('breaks ties by sessionID ascending in both orders', () => {
    const sessions = [
      makeSession({ sessionID: '3', timestamp: 5 }),
      makeSession({ sessionID: '1', timestamp: 5 }),
      makeSession({ sessionID: '2', timestamp: 5 }),
      makeSession({ sessionID: '0', timestamp: 6 }),
    ];
    expect(sorted(sessions, 'timestamp', 'ASC')).toEqual(['1', '2', '3', '0']);
    expect(sorted(sessions, 'timestamp', 'DESC')).toEqual(['0', '1', '2', '3']);
    // Same text in another case is a tie too.
    const text = [makeSession({ sessionID: 'b', userID: 'X' }), makeSession({ sessionID: 'a', userID: 'x' })];
    expect(sorted(text, 'userID', 'DESC')).toEqual(['a', 'b']);
  });

  it('sorts by a metadata value, absent values last', () => {
    const sessions = [
      makeSession({ sessionID: 'a', metadata: { plan: 'Trial' } }),
      makeSession({ sessionID: 'b', metadata: {} }),
      makeSession({ sessionID: 'c', metadata: { plan: 'free' } }),
      makeSession({ sessionID: 'd', metadata: { plan: 'pro' } }),
    ];
    expect(sorted(sessions, 'metadata.plan', 'ASC')).toEqual(['c', 'd', 'a', 'b']);
    expect(sorted(sessions, 'metadata.plan', 'DESC')).toEqual(['a', 'd', 'c', 'b']);
  });

  it('sorts booleans as 0/1', () => {
    const sessions = [makeSession({ sessionID: 'a', active: true }), makeSession({ sessionID: 'b', active: false })];
    expect(sorted(sessions, 'active', 'ASC')).toEqual(['b', 'a']);
    expect(sorted(sessions, 'active', 'DESC')).toEqual(['a', 'b']);
  });

  it('is 0 only for the same session', () => {
    const a = makeSession({ sessionID: 'a', timestamp: 1 });
    expect(compareSessions(a, a, 'timestamp', 'DESC')).toBe(0);
    expect(compareSessions(a, makeSession({ sessionID: 'b', timestamp: 1 }), 'timestamp', 'DESC')).not.toBe(0);
  });
});
