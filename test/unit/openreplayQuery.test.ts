/** The OpenReplay grammar front-end (src/sessions/openreplayQuery.ts): what each backend body becomes in the hub's query. */
import { translateLiveSearch } from '../../src/sessions/openreplayQuery';
import type { SearchQuery } from '../../src/sessions/query';

function query(body: unknown, userId?: string): SearchQuery {
  const r = translateLiveSearch(body, userId);
  if (!r.ok) throw new Error(r.message);
  return r.value;
}

describe('translateLiveSearch', () => {
  test('no body: every session, newest first, a first page of 200', () => {
    expect(query(undefined)).toEqual({ filters: [], sort: 'timestamp', order: 'DESC', page: 1, limit: 200 });
  });

  test('LiveFilterType names map to the filter types; any other name is a metadata key', () => {
    const q = query({ filter: { userId: { values: ['A'], operator: 'is' }, platform: { values: ['mobile'] }, revId: { values: ['r'] }, userUuid: { values: ['u'] }, plan: { values: ['Trial'], operator: 'contains' } } });
    expect(q.filters.map((f) => [f.type, f.attribute, f.isMetadata, f.operator, f.values])).toEqual([
      ['USERID', 'userID', false, 'is', ['a']],
      ['PLATFORM', 'userDeviceType', false, 'contains', ['mobile']],
      ['REVID', 'revID', false, 'contains', ['r']],
      ['USERUUID', 'userUUID', false, 'contains', ['u']],
      ['METADATA', 'plan', true, 'contains', ['trial']],
    ]);
  });

  test('plain and 1.7 forms, one string as one value, "" and null values dropped, empty filters left out', () => {
    expect(query({ filter: { userId: 'x' } }).filters[0]).toMatchObject({ type: 'USERID', operator: 'contains', values: ['x'] });
    expect(query({ filter: { userId: ['x', 'y'] } }).filters[0]).toMatchObject({ values: ['x', 'y'] });
    expect(query({ filter: { userId: { values: 'abc' } } }).filters[0]).toMatchObject({ values: ['abc'] });
    expect(query({ filter: { userId: { values: 42 } } }).filters[0]).toMatchObject({ values: ['42'] });
    expect(query({ filter: { userId: { values: ['', null, 'z'] } } }).filters[0]).toMatchObject({ values: ['z'] });
    expect(query({ filter: { userId: { values: [''], operator: 'is' }, userOs: { values: [] }, userBrowser: null } }).filters).toEqual([]);
    expect(query({ filter: { uxtId: 'T1', operator: 'is' } }).filters).toEqual([expect.objectContaining({ type: 'METADATA', attribute: 'uxtId', operator: 'is', values: ['t1'] })]);
  });

  test('the GET list\'s ?userId= is a contains filter added to the body\'s', () => {
    expect(query({}, 'bob').filters).toEqual([expect.objectContaining({ type: 'USERID', operator: 'contains', values: ['bob'] })]);
  });

  test.each([
    [{ key: 'timestamp', order: 'DESC' }, 'timestamp', 'DESC'],
    [{ key: 'TIMESTAMP', order: 'asc' }, 'timestamp', 'ASC'],
    [{ key: 'timestamp' }, 'timestamp', 'DESC'],
    [{ key: 'startTs', order: 'ASC' }, 'timestamp', 'ASC'],
    [{ key: 'duration', order: 'DESC' }, 'timestamp', 'ASC'],
    [{ key: 'duration', order: 'ASC' }, 'timestamp', 'DESC'],
    [{ key: 'userId', order: 'ASC' }, 'userID', 'ASC'],
    [{ key: 'userCountry', order: 'DESC' }, 'userCountry', 'DESC'],
    [{ key: 'plan', order: 'ASC' }, 'metadata.plan', 'ASC'],
    [{ key: 'x'.repeat(300), order: 'ASC' }, 'timestamp', 'ASC'],
    [null, 'timestamp', 'DESC'],
  ])('sort %j -> %s %s', (sort, attribute, order) => {
    expect(query({ sort })).toMatchObject({ sort: attribute, order });
  });

  test('pagination: page and limit; a limit past 200 is 200; 0 and null are not given', () => {
    expect(query({ pagination: { limit: 10, page: 3 } })).toMatchObject({ page: 3, limit: 10 });
    expect(query({ pagination: { limit: 1000, page: 1 } })).toMatchObject({ limit: 200 });
    expect(query({ pagination: { limit: 0, page: null } })).toMatchObject({ page: 1, limit: 200 });
    expect(query({ pagination: { limit: '5', page: '2' } })).toMatchObject({ page: 2, limit: 5 });
  });

  test.each([
    ['[]', [], /body: expected a JSON object/],
    ['filter as a list', { filter: [1] }, /filter: expected an object/],
    ['an unknown operator', { filter: { userId: { values: ['x'], operator: 'regex' } } }, /filter\.userId: operator must be "is" or "contains"/],
    ['an object value', { filter: { userId: { values: [{}] } } }, /filter\.userId\.values: values must be strings/],
    ['too many values', { filter: { userId: { values: Array.from({ length: 101 }, (_, i) => `v${i}`) } } }, /at most 100 values/],
    ['an overlong value', { filter: { userId: 'x'.repeat(257) } }, /at most 256 characters/],
    ['too many filters', { filter: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])) }, /at most 32 filters/],
    ['a bad order', { sort: { key: 'timestamp', order: 'up' } }, /sort\.order: must be ASC or DESC/],
    ['a sort that is not an object', { sort: 'timestamp' }, /sort: expected/],
    ['a negative page', { pagination: { page: -2 } }, /pagination\.page/],
    ['a fractional limit', { pagination: { limit: 2.5 } }, /pagination\.limit/],
  ])('refuses %s with a message naming the field', (_what, body, message) => {
    const r = translateLiveSearch(body);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toMatch(message);
  });
});
