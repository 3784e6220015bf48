/**
 * Property tests of the index against naive models: the search (secondary indexes, sort, pages,
 * total) against filter + sort + slice over the same sessions, and the state after random op
 * sequences against a model rebuilt from scratch. Values come from small pools so filters hit.
 *
 * Reproduce a failure with the seed (and path) fast-check prints: FC_SEED=<seed> npx jest test/unit/properties.
 */
import fc from 'fast-check';
import type { JsonObject, Session, SessionData, TabState } from '../../src/sessions/model';
import { FILTER_ATTRIBUTES, type SearchQuery, compareSessions, matchesAll, parseSearchQuery } from '../../src/sessions/query';
import { combineSession } from '../../src/sessions/sessionData';
import { SessionIndex } from '../../src/sessions/sessionIndex';
import { OTHER_PROJECT, PROJECT, dataOp, makeData, tabDown, tabUp } from '../support/sessions';

const SEED = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : 20240611;
const RUNS = process.env.FC_RUNS !== undefined ? Number(process.env.FC_RUNS) : 300;
const options = { seed: SEED, numRuns: RUNS };

// ---- pools ----
const USER_IDS = ['', 'alice', 'Alice', 'bob', 'carol@x.com', 'BOB'];
const BROWSERS = ['Chrome', 'chrome', 'Firefox', 'Safari'];
const OSES = ['Linux', 'Mac OS', 'Windows'];
const COUNTRIES = ['FR', 'fr', 'DE', 'US', ''];
const CITIES = ['Paris', 'Berlin', ''];
const DEVICE_TYPES = ['desktop', 'mobile', 'tablet', ''];
const META_KEYS = ['plan', 'team', 'Plan'];
const META_VALUES = ['trial', 'Trial', 'paid', 'free', ''];
const TITLES = ['Home', 'home page', 'Checkout', ''];
const SESSION_IDS = ['1', '2', '3', '10', '11', 'a', 'b', 'B', 'c9', 'z'];
/** Every pool value plus fragments, lower and upper case: what filter values are drawn from. */
const FILTER_VALUES = [
  ...new Set([
    ...USER_IDS, ...BROWSERS, ...OSES, ...COUNTRIES, ...CITIES, ...DEVICE_TYPES, ...META_VALUES, ...TITLES, ...SESSION_IDS,
    'al', 'ALI', 'o', 'r', 'ch', 'ome', 'a', '1', 'x', 'TRI', 'e',
  ]),
];
const FILTER_TYPES = Object.keys(FILTER_ATTRIBUTES);
const SORTS = ['timestamp', 'sessionID', 'userID', 'userBrowser', 'userCountry', 'userCity', 'userDeviceType', 'pageTitle', 'active', 'TIMESTAMP', 'userid'];

// ---- arbitraries ----
const metadataArb: fc.Arbitrary<JsonObject> = fc.dictionary(fc.constantFrom(...META_KEYS), fc.constantFrom(...META_VALUES), { maxKeys: 3 });

const fieldsArb: fc.Arbitrary<JsonObject> = fc.record(
  {
    userID: fc.constantFrom(...USER_IDS),
    userBrowser: fc.constantFrom(...BROWSERS),
    userOs: fc.constantFrom(...OSES),
    userCountry: fc.constantFrom(...COUNTRIES),
    userCity: fc.constantFrom(...CITIES),
    userDeviceType: fc.constantFrom(...DEVICE_TYPES),
    timestamp: fc.integer({ min: 0, max: 6 }).map((n) => n * 100),
    metadata: metadataArb,
  },
  { requiredKeys: ['timestamp'] },
);

const tabArb = (tabId: string): fc.Arbitrary<TabState> =>
  fc.record({
    tabId: fc.constant(tabId),
    socketId: fc.constantFrom('s0', 's1'),
    nodeId: fc.constantFrom('node-a', 'node-b'),
    pageTitle: fc.constantFrom(...TITLES),
    active: fc.boolean(),
    connectedAt: fc.integer({ min: 0, max: 3 }),
    lastActiveAt: fc.integer({ min: 0, max: 3 }),
  });

interface SessionSpec {
  sessionId: string;
  data: SessionData;
  tabs: TabState[];
}

const sessionSpecArb = (sessionId: string): fc.Arbitrary<SessionSpec> =>
  fc.record({
    sessionId: fc.constant(sessionId),
    data: fieldsArb.map((f) => makeData(f)),
    tabs: fc.uniqueArray(fc.constantFrom('t1', 't2', 't3'), { minLength: 1, maxLength: 3 }).chain((ids) => fc.tuple(...ids.map(tabArb))),
  });

const sessionsArb: fc.Arbitrary<SessionSpec[]> = fc
  .uniqueArray(fc.constantFrom(...SESSION_IDS), { maxLength: SESSION_IDS.length })
  .chain((ids) => (ids.length === 0 ? fc.constant([]) : fc.tuple(...ids.map(sessionSpecArb))));

const filterArb = fc.record(
  {
    type: fc.constantFrom(...FILTER_TYPES).chain((t) => fc.constantFrom(t, t.toLowerCase())),
    source: fc.constantFrom(...META_KEYS),
    operator: fc.constantFrom('is', 'contains'),
    value: fc.oneof(
      { weight: 4, arbitrary: fc.array(fc.constantFrom(...FILTER_VALUES), { maxLength: 3 }) },
      { weight: 1, arbitrary: fc.constantFrom(...FILTER_VALUES) },
    ),
  },
  { requiredKeys: ['type', 'source'] },
);

const queryBodyArb = fc.record(
  {
    filters: fc.array(filterArb, { maxLength: 3 }),
    sort: fc.constantFrom(...SORTS),
    order: fc.constantFrom('ASC', 'DESC', 'asc', 'desc'),
    page: fc.integer({ min: 1, max: 5 }),
    limit: fc.integer({ min: 1, max: 8 }),
  },
  { requiredKeys: [] },
);

function parse(body: unknown): SearchQuery {
  const parsed = parseSearchQuery(body);
  if (!parsed.ok) throw new Error(`generated query refused: ${parsed.message} (${JSON.stringify(body)})`);
  return parsed.value;
}

/** The search done the slow, obvious way. */
function naiveSearch(sessions: readonly Session[], q: SearchQuery): { total: number; sessions: Session[] } {
  const matches = sessions.filter((s) => matchesAll(s, q.filters)).sort((a, b) => compareSessions(a, b, q.sort, q.order));
  const start = (q.page - 1) * q.limit;
  return { total: matches.length, sessions: matches.slice(start, start + q.limit) };
}

function searchResult(index: SessionIndex, projectKey: string, q: SearchQuery) {
  const page = index.search(projectKey, q);
  return { total: page.total, sessions: page.rooms.map((r) => r.view) };
}

describe('properties', () => {
  it('search equals filter + sort + slice over the same sessions', () => {
    fc.assert(
      fc.property(sessionsArb, fc.array(queryBodyArb, { minLength: 1, maxLength: 4 }), (specs, bodies) => {
        const index = new SessionIndex();
        for (const spec of specs) {
          spec.tabs.forEach((tab, i) => {
            index.apply(tabUp(spec.sessionId, tab, i === 0 ? spec.data : undefined));
          });
        }
        const expected = specs.map((s) => combineSession(PROJECT, s.sessionId, s.data, s.tabs));
        for (const body of bodies) {
          const q = parse(body);
          expect(searchResult(index, PROJECT, q)).toEqual(naiveSearch(expected, q));
        }
      }),
      options,
    );
  });

  type Command =
    | { kind: 'up'; projectKey: string; sessionId: string; tab: TabState; data: SessionData | undefined }
    | { kind: 'data'; projectKey: string; sessionId: string; data: SessionData }
    | { kind: 'down'; projectKey: string; sessionId: string; tabId: string; socketId: string };

  const projectArb = fc.constantFrom(PROJECT, PROJECT, OTHER_PROJECT);
  const opSessionArb = fc.constantFrom('1', '2', '3', 'a');
  const versionedArb: fc.Arbitrary<SessionData> = fc
    .tuple(fieldsArb, fc.integer({ min: 1, max: 4 }), fc.constantFrom('node-a', 'node-b'))
    .map(([f, v, o]) => makeData(f, v, o));
  const commandArb: fc.Arbitrary<Command> = fc.oneof(
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('up' as const),
        projectKey: projectArb,
        sessionId: opSessionArb,
        tab: fc.constantFrom('t1', 't2').chain(tabArb),
        data: fc.option(versionedArb, { nil: undefined }),
      }),
    },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('data' as const), projectKey: projectArb, sessionId: opSessionArb, data: versionedArb }) },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('down' as const),
        projectKey: projectArb,
        sessionId: opSessionArb,
        tabId: fc.constantFrom('t1', 't2'),
        socketId: fc.constantFrom('s0', 's1'),
      }),
    },
  );

  interface ModelRoom {
    data: SessionData | undefined;
    tabs: Map<string, TabState>;
  }

  /** The expected state, kept by obvious rules, independent of the index's code. */
  class Model {
    readonly rooms = new Map<string, ModelRoom>();

    apply(c: Command): void {
      const key = `${c.projectKey}/${c.sessionId}`;
      const room = this.rooms.get(key);
      const newer = (d: SessionData) =>
        !room?.data || d.version > room.data.version || (d.version === room.data.version && d.origin > room.data.origin);
      if (c.kind === 'up') {
        const r = room ?? { data: undefined, tabs: new Map<string, TabState>() };
        if (c.data && newer(c.data)) r.data = c.data;
        r.tabs.set(c.tab.tabId, c.tab);
        this.rooms.set(key, r);
      } else if (c.kind === 'data') {
        if (room && room.tabs.size > 0 && newer(c.data)) room.data = c.data;
      } else if (room && room.tabs.get(c.tabId)?.socketId === c.socketId) {
        room.tabs.delete(c.tabId);
        if (room.tabs.size === 0) this.rooms.delete(key);
      }
    }

    sessions(projectKey: string): Session[] {
      const out: Session[] = [];
      for (const [key, room] of this.rooms) {
        const [pk, sid] = key.split('/') as [string, string];
        if (pk === projectKey && room.data) out.push(combineSession(pk, sid, room.data, [...room.tabs.values()]));
      }
      return out;
    }
  }

  function toOp(c: Command) {
    if (c.kind === 'up') return tabUp(c.sessionId, c.tab, c.data, c.projectKey);
    if (c.kind === 'data') return dataOp(c.sessionId, c.data, c.projectKey);
    return tabDown(c.sessionId, c.tabId, c.socketId, c.projectKey);
  }

  it('after random op sequences the index equals a model rebuilt from the surviving state', () => {
    fc.assert(
      fc.property(fc.array(commandArb, { maxLength: 40 }), fc.array(queryBodyArb, { maxLength: 3 }), (commands, bodies) => {
        const index = new SessionIndex();
        const model = new Model();
        // What listeners saw: applying every change event must give the index's current state.
        const heard = new Map<string, Session>();
        index.onChange((c) => {
          const key = `${c.projectKey}/${c.sessionId}`;
          expect(c.before).toEqual(heard.get(key));
          if (c.after) heard.set(key, c.after);
          else heard.delete(key);
          expect(c.before === undefined && c.after === undefined).toBe(false);
        });
        let maxVersion = 0;
        for (const c of commands) {
          const before = index.projectVersion(c.projectKey);
          const view = index.session(c.projectKey, c.sessionId);
          index.apply(toOp(c));
          model.apply(c);
          // Every view change moves the project version forward, to a value it never had.
          // (An emptied project reads as version 0, which only ever means "no sessions".)
          if (index.session(c.projectKey, c.sessionId) !== view) {
            const after = index.projectVersion(c.projectKey);
            expect(after).not.toBe(before);
            if (after === 0) expect(index.projectSize(c.projectKey)).toBe(0);
            else {
              expect(after).toBeGreaterThan(maxVersion);
              maxVersion = after;
            }
          } else {
            // No view changed: the version may still move (a tab with no data yet), but never back to an old value.
            const after = index.projectVersion(c.projectKey);
            if (after !== before && after !== 0) {
              expect(after).toBeGreaterThan(maxVersion);
              maxVersion = after;
            }
          }
        }
        let total = 0;
        for (const pk of [PROJECT, OTHER_PROJECT]) {
          const expected = model.sessions(pk).sort((a, b) => compareSessions(a, b, 'timestamp', 'DESC'));
          total += expected.length;
          const all = index.search(pk, parse({}));
          expect(all.total).toBe(expected.length);
          expect(all.rooms.map((r) => r.sessionId)).toEqual(expected.map((s) => s.sessionID));
          expect(all.rooms.map((r) => r.view)).toEqual(expected);
          expect(index.projectSize(pk)).toBe(expected.length);
          for (const s of expected) expect(index.session(pk, s.sessionID)).toEqual(s);
          for (const s of expected) expect(heard.get(`${pk}/${s.sessionID}`)).toEqual(s);
          // The secondary indexes agree with a naive search after all those updates.
          for (const body of bodies) {
            const q = parse(body);
            expect(searchResult(index, pk, q)).toEqual(naiveSearch(expected, q));
          }
        }
        expect(heard.size).toBe(total);
        expect(index.size).toBe(total);
        // Rooms exist exactly for sessions with a tab (no agents here).
        expect([...index.allRooms()].map((r) => `${r.projectKey}/${r.sessionId}`).sort()).toEqual([...model.rooms.keys()].sort());
      }),
      options,
    );
  });

  it('search with is filters on indexed attributes agrees with the naive search after data changes', () => {
    // Focused on the secondary indexes: every session's data is replaced several times.
    const isBody = fc.record({
      filters: fc.array(
        fc.record({
          type: fc.constantFrom('USERID', 'USERBROWSER', 'USEROS', 'USERCOUNTRY', 'PLATFORM', 'METADATA'),
          source: fc.constantFrom(...META_KEYS),
          operator: fc.constant('is'),
          value: fc.array(fc.constantFrom(...FILTER_VALUES), { maxLength: 3 }),
        }),
        { minLength: 1, maxLength: 2 },
      ),
    });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('1', '2', '3', '4'), fieldsArb), { minLength: 1, maxLength: 30 }),
        fc.array(isBody, { minLength: 1, maxLength: 5 }),
        (updates, bodies) => {
          const index = new SessionIndex();
          const current = new Map<string, SessionData>();
          for (const [sid, fields] of updates) {
            const prev = current.get(sid);
            const data = makeData(fields, (prev?.version ?? 0) + 1);
            current.set(sid, data);
            index.apply(prev ? dataOp(sid, data) : tabUp(sid, { tabId: 't', socketId: 's', nodeId: 'n', pageTitle: '', active: true, connectedAt: 0, lastActiveAt: 0 }, data));
          }
          const expected = [...current].map(([sid, data]) =>
            combineSession(PROJECT, sid, data, [{ tabId: 't', socketId: 's', nodeId: 'n', pageTitle: '', active: true, connectedAt: 0, lastActiveAt: 0 }]),
          );
          for (const body of bodies) {
            const q = parse(body);
            expect(searchResult(index, PROJECT, q)).toEqual(naiveSearch(expected, q));
          }
        },
      ),
      options,
    );
  });
});
