import type { JsonObject, JsonValue } from '../../src/sessions/model';
import {
  DEFAULT_SESSION_DATA_LIMITS,
  type SessionDataLimits,
  boundSessionFields,
  combineSession,
  deepMerge,
  jsonByteLength,
  mergeSessionData,
  newSessionData,
  parseSessionInfo,
  primaryTab,
  splitTabFields,
} from '../../src/sessions/sessionData';
import { PROJECT, makeData, makeTab } from '../support/sessions';

const limits: SessionDataLimits = DEFAULT_SESSION_DATA_LIMITS;

/** An object nested `levels` deep: `{a: {a: ... {}}}` has depth `levels`. */
function nested(levels: number): JsonObject {
  let value: JsonObject = {};
  for (let i = 1; i < levels; i++) value = { a: value };
  return value;
}

function ok<T>(result: { ok: true; value: T } | { ok: false; message: string }): T {
  if (!result.ok) throw new Error(`expected ok, got: ${result.message}`);
  return result.value;
}

function message(result: { ok: true; value: unknown } | { ok: false; message: string }): string {
  if (result.ok) throw new Error(`expected a refusal, got ${JSON.stringify(result.value)}`);
  return result.message;
}

afterEach(() => {
  // No test may leave Object.prototype polluted.
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect(Object.hasOwn(Object.prototype, 'polluted')).toBe(false);
});

describe('parseSessionInfo', () => {
  it('parses a tracker sessionInfo string, keeping unknown fields', () => {
    const info = {
      pageTitle: 'Blog',
      active: true,
      sessionID: '6975518573799938',
      projectID: 3,
      userID: 'alice',
      metadata: { plan: 'trial' },
      timestamp: 1656437966459,
      somethingNew: { nested: [1, 2] },
    };
    expect(ok(parseSessionInfo(JSON.stringify(info), limits))).toEqual(info);
  });

  it('accepts an object as is and treats absent/empty as {}', () => {
    expect(ok(parseSessionInfo({ userID: 'x' }, limits))).toEqual({ userID: 'x' });
    expect(ok(parseSessionInfo(undefined, limits))).toEqual({});
    expect(ok(parseSessionInfo(null, limits))).toEqual({});
    expect(ok(parseSessionInfo('', limits))).toEqual({});
  });

  it('refuses invalid JSON with a clear message', () => {
    expect(message(parseSessionInfo('{"userID": ', limits))).toBe('sessionInfo is not valid JSON');
    expect(message(parseSessionInfo('not json at all', limits))).toMatch(/not valid JSON/);
  });

  it('refuses JSON that is not an object', () => {
    for (const raw of ['[]', '[{"a":1}]', '"text"', '42', 'true', 'null']) {
      expect(message(parseSessionInfo(raw, limits))).toMatch(/must be a JSON object/);
    }
    expect(message(parseSessionInfo(42, limits))).toMatch(/must be a JSON object/);
    expect(message(parseSessionInfo([1], limits))).toMatch(/must be a JSON object/);
  });

  it('refuses nesting deeper than the limit, accepts exactly the limit', () => {
    const small: SessionDataLimits = { ...limits, maxDepth: 4 };
    expect(ok(parseSessionInfo(JSON.stringify(nested(4)), small))).toEqual(nested(4));
    expect(message(parseSessionInfo(JSON.stringify(nested(5)), small))).toMatch(/deeper than 4/);
    // Arrays count as levels too.
    expect(message(parseSessionInfo(JSON.stringify({ a: [[[[1]]]] }), small))).toMatch(/deeper/);
    // A very deep document is refused, not a stack overflow.
    const deep = '{"a":'.repeat(5000) + '{}' + '}'.repeat(5000);
    expect(message(parseSessionInfo(deep, { ...limits, maxBytes: 1024 * 1024 }))).toMatch(/deeper/);
  });

  it('refuses a string far past the size limit without parsing it', () => {
    const small: SessionDataLimits = { ...limits, maxBytes: 100 };
    expect(message(parseSessionInfo(JSON.stringify({ a: 'x'.repeat(300) }), small))).toMatch(/longer than/);
  });

  it('drops __proto__, constructor and prototype keys at every level', () => {
    const raw = '{"__proto__": {"polluted": 1}, "constructor": {"prototype": {"polluted": 2}}, "prototype": 1,' +
      ' "userID": "u", "metadata": {"__proto__": {"polluted": 3}, "plan": "x"}, "list": [{"__proto__": {"polluted": 4}, "k": 1}]}';
    const value = ok(parseSessionInfo(raw, limits));
    expect(value).toEqual({ userID: 'u', metadata: { plan: 'x' }, list: [{ k: 1 }] });
    expect(Object.keys(value).sort()).toEqual(['list', 'metadata', 'userID']);
    expect(Object.hasOwn(value, '__proto__')).toBe(false);
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.getPrototypeOf(value.metadata)).toBe(Object.prototype);
    expect((value as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('deepMerge', () => {
  it('keeps the metadata keys a partial {metadata: {onlyChanged}} update does not name', () => {
    const base: JsonObject = { userID: 'u', metadata: { plan: 'trial', company: 'acme' } };
    expect(deepMerge(base, { metadata: { plan: 'paid' } })).toEqual({ userID: 'u', metadata: { plan: 'paid', company: 'acme' } });
    expect(deepMerge(base, { metadata: { role: 'admin' } })).toEqual({ userID: 'u', metadata: { plan: 'trial', company: 'acme', role: 'admin' } });
  });

  it('merges objects at every depth and adds new keys', () => {
    expect(deepMerge({ a: { b: { c: 1, d: 2 } } }, { a: { b: { c: 3 } }, e: 4 })).toEqual({ a: { b: { c: 3, d: 2 } }, e: 4 });
  });

  it('replaces arrays, primitives and mismatched types', () => {
    expect(deepMerge({ list: [1, 2, 3] }, { list: [4] })).toEqual({ list: [4] });
    expect(deepMerge({ a: { x: 1 } }, { a: 'text' })).toEqual({ a: 'text' });
    expect(deepMerge({ a: 'text' }, { a: { x: 1 } })).toEqual({ a: { x: 1 } });
    expect(deepMerge({ a: [1] }, { a: { x: 1 } })).toEqual({ a: { x: 1 } });
    expect(deepMerge({ a: { x: 1 } }, { a: null })).toEqual({ a: null });
  });

  it('an empty update changes nothing', () => {
    const base: JsonObject = { userID: 'u', metadata: { plan: 'trial' } };
    expect(deepMerge(base, {})).toEqual(base);
  });

  it('does not mutate its inputs', () => {
    const base: JsonObject = { userID: 'u', metadata: { plan: 'trial' }, list: [1, { k: 'v' }] };
    const patch: JsonObject = { metadata: { plan: 'paid', extra: 'x' }, list: [{ k: 'w' }], nested: { a: { b: 1 } } };
    const baseCopy = structuredClone(base);
    const patchCopy = structuredClone(patch);
    const out = deepMerge(base, patch);
    expect(base).toEqual(baseCopy);
    expect(patch).toEqual(patchCopy);
    // The result does not share the patch's objects: changing it later cannot reach the patch.
    (out.nested as JsonObject).a = 'changed';
    ((out.list as JsonValue[])[0] as JsonObject).k = 'changed';
    expect(patch).toEqual(patchCopy);
    (out.metadata as JsonObject).plan = 'changed';
    expect(base).toEqual(baseCopy);
  });

  it('cannot reach any prototype through __proto__, constructor or prototype', () => {
    const base: JsonObject = { metadata: { plan: 'trial' } };
    const out = deepMerge(base, JSON.parse('{"__proto__": {"polluted": 1}}'));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((out as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(out).toEqual(base);

    const nestedOut = deepMerge(base, JSON.parse('{"metadata": {"__proto__": {"polluted": 1}, "plan": "paid"}}'));
    expect(nestedOut).toEqual({ metadata: { plan: 'paid' } });
    expect(Object.getPrototypeOf(nestedOut.metadata)).toBe(Object.prototype);

    const ctor = deepMerge(base, JSON.parse('{"constructor": {"prototype": {"polluted": 1}}, "prototype": {"polluted": 1}}'));
    expect(ctor).toEqual(base);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();

    // A new sub-object from the patch is sanitised too.
    const fresh = deepMerge({}, JSON.parse('{"extra": {"__proto__": {"polluted": 1}, "k": 1}, "arr": [{"__proto__": {"polluted": 1}}]}'));
    expect(fresh).toEqual({ extra: { k: 1 }, arr: [{}] });
    expect(Object.getPrototypeOf(fresh.extra)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('survives a hostile, very deeply nested update, and the result is still refused by the bounds', () => {
    // An UPDATE_SESSION payload of ~500 KB nesting 100k levels deep: a recursive copy would overflow the stack.
    const levels = 100_000;
    const deepObject = JSON.parse('{"a":'.repeat(levels) + '1' + '}'.repeat(levels)) as JsonObject;
    const deepArray = JSON.parse('{"a":' + '['.repeat(levels) + ']'.repeat(levels) + '}') as JsonObject;
    for (const patch of [deepObject, deepArray]) {
      const merged = deepMerge({ userID: 'u', a: { b: 1 } }, patch);
      expect(merged.userID).toBe('u');
      const bounded = boundSessionFields(merged, { ...limits, maxDepth: 64 });
      expect(bounded.ok).toBe(false);
    }
  });

  it('keys named like Object.prototype methods are plain data', () => {
    const out = deepMerge({}, { toString: 'x', hasOwnProperty: { a: 1 } });
    expect(out).toEqual({ toString: 'x', hasOwnProperty: { a: 1 } });
  });
});

describe('boundSessionFields', () => {
  it('removes tab fields, computed fields and prototype keys, keeps the rest', () => {
    const fields = JSON.parse(
      '{"pageTitle": "t", "active": true, "live": false, "tabIds": ["x"], "projectKey": "evil", "__proto__": {"polluted": 1},' +
        ' "userID": "u", "timestamp": 5, "extra": {"k": [1]}}',
    ) as JsonObject;
    expect(ok(boundSessionFields(fields, limits))).toEqual({ userID: 'u', timestamp: 5, extra: { k: [1] } });
  });

  it('normalises metadata to strings, dropping values that are not scalars', () => {
    const out = ok(boundSessionFields({ metadata: { s: 'x', n: 42, b: false, z: null, o: { a: 1 }, l: ['x'] } }, limits));
    expect(out.metadata).toEqual({ s: 'x', n: '42', b: 'false' });
  });

  it('turns metadata that is not an object into {}', () => {
    expect(ok(boundSessionFields({ metadata: 'plan=trial' }, limits)).metadata).toEqual({});
    expect(ok(boundSessionFields({ metadata: null }, limits)).metadata).toEqual({});
    expect(ok(boundSessionFields({ metadata: ['a'] }, limits)).metadata).toEqual({});
  });

  it('does not add metadata when there was none', () => {
    expect(ok(boundSessionFields({ userID: 'u' }, limits))).toEqual({ userID: 'u' });
  });

  it('keeps at most maxMetadataKeys metadata keys (the first ones)', () => {
    const metadata: JsonObject = {};
    for (let i = 0; i < 10; i++) metadata[`k${i}`] = `v${i}`;
    const out = ok(boundSessionFields({ metadata }, { ...limits, maxMetadataKeys: 3 }));
    expect(out.metadata).toEqual({ k0: 'v0', k1: 'v1', k2: 'v2' });
    // Dropped values do not use up the budget.
    const mixed = ok(boundSessionFields({ metadata: { a: null, b: { x: 1 }, c: '1', d: '2', e: '3', f: '4' } }, { ...limits, maxMetadataKeys: 3 }));
    expect(mixed.metadata).toEqual({ c: '1', d: '2', e: '3' });
  });

  it('refuses data over the byte limit, measured in UTF-8 bytes, after tab fields are removed', () => {
    const small: SessionDataLimits = { ...limits, maxBytes: 100 };
    expect(message(boundSessionFields({ userID: 'x'.repeat(100) }, small))).toMatch(/exceeds the limit of 100/);
    // 40 two-byte characters: 80 bytes of text + the JSON around it > 100 bytes, though only ~50 characters.
    expect(message(boundSessionFields({ userID: 'é'.repeat(45) }, small))).toMatch(/exceeds/);
    expect(ok(boundSessionFields({ userID: 'x'.repeat(50) }, small))).toEqual({ userID: 'x'.repeat(50) });
    // A big pageTitle does not count: it is not session data.
    expect(ok(boundSessionFields({ pageTitle: 'x'.repeat(500), userID: 'u' }, small))).toEqual({ userID: 'u' });
  });

  it('refuses nesting past maxDepth and accepts exactly maxDepth', () => {
    const small: SessionDataLimits = { ...limits, maxDepth: 3 };
    expect(ok(boundSessionFields(nested(3), small))).toEqual(nested(3));
    expect(message(boundSessionFields(nested(4), small))).toMatch(/deeper than 3/);
    expect(ok(boundSessionFields({ list: [[1]], x: { y: [2] } }, small))).toEqual({ list: [[1]], x: { y: [2] } });
    expect(message(boundSessionFields({ list: [[[1]]] }, small))).toMatch(/deeper/);
  });

  it('does not mutate its input', () => {
    const fields: JsonObject = { pageTitle: 't', metadata: { n: 1 } };
    boundSessionFields(fields, limits);
    expect(fields).toEqual({ pageTitle: 't', metadata: { n: 1 } });
  });
});

describe('splitTabFields', () => {
  it('splits pageTitle and active from the session-wide fields', () => {
    expect(splitTabFields({ pageTitle: 'T', active: false, userID: 'u', metadata: { a: 'b' } })).toEqual({
      tab: { pageTitle: 'T', active: false },
      session: { userID: 'u', metadata: { a: 'b' } },
    });
  });

  it('ignores tab fields of the wrong type (they are not session data either)', () => {
    expect(splitTabFields({ pageTitle: 5, active: 'yes', userID: 'u' })).toEqual({ tab: {}, session: { userID: 'u' } });
  });

  it('handles the empty update and updates with only one side', () => {
    expect(splitTabFields({})).toEqual({ tab: {}, session: {} });
    expect(splitTabFields({ active: true })).toEqual({ tab: { active: true }, session: {} });
    expect(splitTabFields({ agentIds: [], isCallActive: false })).toEqual({ tab: {}, session: { agentIds: [], isCallActive: false } });
  });

  it('does not let a __proto__ key change the session part prototype', () => {
    const { session } = splitTabFields(JSON.parse('{"__proto__": {"userID": "evil", "polluted": 1}, "revID": "r"}'));
    expect(Object.getPrototypeOf(session)).toBe(Object.prototype);
    expect((session as Record<string, unknown>).userID).toBeUndefined();
    expect(session).toEqual({ revID: 'r' });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('combineSession', () => {
  it('fills the default of every REST field', () => {
    const session = combineSession(PROJECT, '42', makeData({}), [makeTab('t1', { pageTitle: '', active: false })]);
    expect(session).toEqual({
      sessionID: '42',
      projectKey: PROJECT,
      projectId: null,
      pageTitle: '',
      active: false,
      live: true,
      userID: '',
      userUUID: '',
      userAnonymousId: '',
      metadata: {},
      revID: '',
      timestamp: 0,
      trackerVersion: '',
      isSnippet: false,
      assistOnly: false,
      userOs: null,
      userBrowser: null,
      userBrowserVersion: null,
      userDevice: null,
      userDeviceType: 'desktop',
      userCountry: null,
      userState: null,
      userCity: null,
      tabIds: ['t1'],
      tabId: 't1',
    });
  });

  it('keeps announced fields, extra fields, and coerces types', () => {
    const session = combineSession(
      PROJECT,
      '42',
      makeData({
        userID: 'alice',
        userUUID: 'uuid',
        metadata: { plan: 'trial', seats: 3 },
        timestamp: '1656437966459',
        trackerVersion: '3.5.11',
        isSnippet: true,
        assistOnly: true,
        userOs: 'Mac OS',
        userBrowser: 'Chrome',
        userBrowserVersion: '103.0.0.0',
        userDevice: '',
        userDeviceType: '',
        userCountry: 'FR',
        userCity: '',
        revID: 7,
        somethingNew: { a: [1] },
      }),
      [makeTab('t1')],
    );
    expect(session).toMatchObject({
      userID: 'alice',
      userUUID: 'uuid',
      metadata: { plan: 'trial', seats: '3' },
      timestamp: 1656437966459,
      trackerVersion: '3.5.11',
      isSnippet: true,
      assistOnly: true,
      userOs: 'Mac OS',
      userBrowser: 'Chrome',
      userBrowserVersion: '103.0.0.0',
      userDevice: null,
      userDeviceType: 'desktop',
      userCountry: 'FR',
      userCity: null,
      revID: '7',
      somethingNew: { a: [1] },
    });
  });

  it('takes sessionID and projectKey from the room, never from the data', () => {
    const session = combineSession(PROJECT, '42', makeData({ sessionID: '999', projectKey: 'other', live: false, tabIds: ['x'] }), [makeTab('t1')]);
    expect(session).toMatchObject({ sessionID: '42', projectKey: PROJECT, live: true, tabIds: ['t1'] });
  });

  it('takes projectId from projectID, projectId first', () => {
    expect(combineSession(PROJECT, '1', makeData({ projectID: 3 }), [makeTab('t')]).projectId).toBe(3);
    expect(combineSession(PROJECT, '1', makeData({ projectID: '3' }), [makeTab('t')]).projectId).toBe('3');
    expect(combineSession(PROJECT, '1', makeData({ projectId: 5, projectID: 3 }), [makeTab('t')]).projectId).toBe(5);
    expect(combineSession(PROJECT, '1', makeData({ projectID: { x: 1 } }), [makeTab('t')]).projectId).toBeNull();
  });

  it('is active if any tab is active', () => {
    const data = makeData({});
    expect(combineSession(PROJECT, '1', data, [makeTab('a', { active: false }), makeTab('b', { active: true })]).active).toBe(true);
    expect(combineSession(PROJECT, '1', data, [makeTab('a', { active: false }), makeTab('b', { active: false })]).active).toBe(false);
  });

  it('shows the pageTitle of the most recently active tab, then the most recently connected', () => {
    const data = makeData({});
    const a = makeTab('a', { pageTitle: 'A', connectedAt: 1, lastActiveAt: 50 });
    const b = makeTab('b', { pageTitle: 'B', connectedAt: 2, lastActiveAt: 10 });
    expect(combineSession(PROJECT, '1', data, [a, b]).pageTitle).toBe('A');
    expect(combineSession(PROJECT, '1', data, [b, a]).pageTitle).toBe('A');
    const c = makeTab('c', { pageTitle: 'C', connectedAt: 3, lastActiveAt: 50 });
    expect(combineSession(PROJECT, '1', data, [a, b, c]).pageTitle).toBe('C');
    expect(combineSession(PROJECT, '1', data, [c, b, a]).pageTitle).toBe('C');
    expect(primaryTab([a, b, c])?.tabId).toBe('c');
    expect(primaryTab([])).toBeUndefined();
  });

  it('lists tabIds oldest first whatever the input order', () => {
    const data = makeData({});
    const tabs = [makeTab('z', { connectedAt: 3 }), makeTab('y', { connectedAt: 1 }), makeTab('x', { connectedAt: 2 }), makeTab('w', { connectedAt: 1 })];
    expect(combineSession(PROJECT, '1', data, tabs).tabIds).toEqual(['w', 'y', 'x', 'z']);
    expect(combineSession(PROJECT, '1', data, [...tabs].reverse()).tabIds).toEqual(['w', 'y', 'x', 'z']);
  });

  it('does not change the tabs or the data', () => {
    const data = makeData({ metadata: { n: 1 } });
    const tabs = [makeTab('b', { connectedAt: 2 }), makeTab('a', { connectedAt: 1 })];
    combineSession(PROJECT, '1', data, tabs);
    expect(tabs.map((t) => t.tabId)).toEqual(['b', 'a']);
    expect(data.fields).toEqual({ metadata: { n: 1 } });
  });
});

describe('newSessionData (a new session in one pass)', () => {
  /** What the merge path gives for a session's first tab. */
  const viaMerge = (info: JsonObject, l: SessionDataLimits) => mergeSessionData(undefined, splitTabFields(info).session, l, 'n1');

  const cases: Array<[string, string]> = [
    ['a tracker sessionInfo', JSON.stringify({ pageTitle: 'Cart', active: true, sessionID: '7', userID: 'u@x', metadata: { plan: 'trial', n: 3 }, timestamp: 5, isSnippet: false, extra: { k: [1, { a: null }] } })],
    ['tab fields of the wrong type', JSON.stringify({ pageTitle: 42, active: 'yes', userID: 'u' })],
    ['computed fields', JSON.stringify({ live: false, tabIds: ['x'], tabId: 'y', projectKey: 'p', userID: 'u' })],
    ['prototype keys, at the top and nested', '{"__proto__": {"polluted": 1}, "constructor": 1, "a": {"__proto__": {"polluted": 2}, "prototype": 3, "b": 1}, "l": [{"__proto__": 1}]}'],
    ['metadata past the key limit, and not strings', JSON.stringify({ metadata: { a: 1, b: true, c: null, d: 'x', e: { f: 1 } } })],
    ['too deep', JSON.stringify({ a: { b: { c: { d: {} } } } })],
    ['too deep only in a computed field', JSON.stringify({ tabIds: [[[[1]]]], userID: 'u' })],
    ['too big', JSON.stringify({ userID: 'é'.repeat(60) })],
    ['empty', '{}'],
  ];
  const small: SessionDataLimits = { maxBytes: 100, maxDepth: 4, maxMetadataKeys: 3 };

  test.each(cases)('equals the merge path: %s', (_name, raw) => {
    for (const l of [limits, small]) {
      expect(newSessionData(JSON.parse(raw) as JsonObject, l, 'n1')).toEqual(viaMerge(JSON.parse(raw) as JsonObject, l));
    }
  });

  test('keeps the values of the info it owns instead of copying them', () => {
    const info = ok(parseSessionInfo(JSON.stringify({ userID: 'u', metadata: { plan: 'pro' }, extra: { list: [1, 2] } }), limits));
    const data = ok(newSessionData(info, limits, 'n1'));
    expect(data.fields.metadata).toBe(info.metadata);
    expect(data.fields.extra).toBe(info.extra);
  });

  test('copies a value that holds a prototype key, without the key', () => {
    const info = JSON.parse('{"a": {"__proto__": {"polluted": 1}, "b": 1}}') as JsonObject;
    const data = ok(newSessionData(info, limits, 'n1'));
    expect(data.fields.a).not.toBe(info.a);
    expect(Object.keys(data.fields.a as JsonObject)).toEqual(['b']);
  });
});

describe('parseSessionInfo ownership', () => {
  test('an object from handshake.auth is copied: the handshake keeps its own', () => {
    const auth = { userID: 'u', metadata: { plan: 'pro' } };
    const fromAuth = ok(parseSessionInfo(auth, limits));
    expect(fromAuth).toEqual(auth);
    expect(fromAuth).not.toBe(auth);
    expect(fromAuth.metadata).not.toBe(auth.metadata);
  });

  test('a string holding a prototype key comes back without it', () => {
    const value = ok(parseSessionInfo('{"a": {"__proto__": {"polluted": 1}, "b": 1}, "__proto__": 1}', limits));
    expect(Object.keys(value)).toEqual(['a']);
    expect(Object.keys(value.a as JsonObject)).toEqual(['b']);
  });
});

describe('jsonByteLength', () => {
  const exact = (value: unknown) => Buffer.byteLength(JSON.stringify(value) ?? '');

  test.each<[string, unknown]>([
    ['escapes and control characters', 'a"b\\c\b\f\n\r\t\u0000\u001f\u007f'],
    ['two- and three-byte characters, U+2028', 'é ü ß € 中 \u2028 \u2029'],
    ['a surrogate pair', '😀 𝄞'],
    ['lone surrogates at both ends and inside', '\ud800x\udc00 \udbff'],
    ['numbers', [0, -0, 1.5, -2e-7, 1e21, 123456789012345680000, Number.MAX_SAFE_INTEGER, Number.NaN, Number.POSITIVE_INFINITY]],
    ['literals', [true, false, null]],
    ['empty containers', { a: [], b: {}, c: [{}], d: '' }],
    ['holes and values JSON leaves out', { a: undefined, b: [undefined, () => 1], c: () => 1, d: 1 }],
    ['a toJSON inside', { when: new Date(0), n: 1 }],
    ['keys that need escapes', { 'a"b': 1, 'é\n': 'x', '': null }],
  ])('equals the serialised size: %s', (_name, value) => {
    expect(jsonByteLength(value)).toBe(exact(value));
  });

  test('equals the serialised size of random JSON-like values', () => {
    let seed = 17;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const units = [0x00, 0x08, 0x0a, 0x1f, 0x22, 0x41, 0x5c, 0x7f, 0x80, 0x7ff, 0x800, 0xd7ff, 0xd800, 0xdbff, 0xdc00, 0xdfff, 0xe000, 0xffff];
    const text = () => String.fromCharCode(...Array.from({ length: random(12) }, () => (units[random(units.length)] as number) + (random(2) === 0 ? 0 : random(3))));
    const value = (depth: number): unknown => {
      const kind = random(depth > 3 ? 5 : 7);
      if (kind === 0) return text();
      if (kind === 1) return (random(2) ? -1 : 1) * random(1_000_000) / (random(3) ? 1 : 1000);
      if (kind === 2) return random(2) === 0;
      if (kind === 3) return null;
      if (kind === 4) return random(4) === 0 ? undefined : text();
      if (kind === 5) return Array.from({ length: random(4) }, () => value(depth + 1));
      return Object.fromEntries(Array.from({ length: random(5) }, () => [text(), value(depth + 1)]));
    };
    for (let i = 0; i < 3000; i++) {
      const v = { root: value(0) };
      expect(jsonByteLength(v)).toBe(exact(v));
    }
  });
});
