/**
 * OpenReplay's internal API (src/http/openreplay.ts) on a real hub, with requests shaped exactly as
 * OpenReplay's backend sends them (api/chalicelib/core/assist.py): `requests.post(ASSIST_URL +
 * "/sockets-live/<projectKey>", json=data)` and the GETs of one session, is_live and autocomplete.
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { loadConfig } from '../src/config';
import { type Hub, startHub } from '../src/server';
import { type CallOptions, type Reply, call } from './support/http';
import { IPHONE_UA, closeAllPeers, connectTracker, newSessionId, projectKey, startLiveHub, waitNoSession, waitSession } from './support/live';

const ASSIST_KEY = 'or-assist-key-0001';
const PK = projectKey('orapi');
const MAC_FIREFOX = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:125.0) Gecko/20100101 Firefox/125.0';
const WIN_CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.91 Safari/537.36';

/** The backend sends no Authorization header: its key is in the path. */
function send(hub: Hub, path: string, init: Pick<CallOptions, 'method' | 'headers' | 'body'> = {}): Promise<Reply> {
  return call(hub.url, path, { key: null, ...init });
}

/** As `requests.post(url, json=data)` sends it. */
function post(hub: Hub, path: string, body: unknown): Promise<Reply> {
  return send(hub, path, { method: 'POST', headers: { 'content-type': 'application/json', accept: '*/*' }, body: JSON.stringify(body) });
}

const live = (project = PK, key = ASSIST_KEY) => `/assist/${key}/sockets-live/${project}`;
type Page = { total: number; sessions: Array<Record<string, unknown>> };
const pageOf = (r: Reply): Page => (r.json as { data: Page }).data;
const idsOf = (r: Reply): string[] => pageOf(r).sessions.map((s) => String(s.sessionID));

describe('OpenReplay internal API', () => {
  let hub: Hub;
  // alice (oldest) .. carol (newest); ids in the numeric form OpenReplay uses.
  const alice = newSessionId();
  const bob = newSessionId();
  const carol = newSessionId();
  const base = Date.now() - 60_000;

  beforeAll(async () => {
    hub = await startLiveHub({ ASSIST_KEY, GEO_COUNTRY_HEADER: 'x-geo-country', GEO_STATE_HEADER: 'x-geo-state', GEO_CITY_HEADER: 'x-geo-city' });
    await connectTracker(hub, {
      projectKey: PK,
      sessionId: alice,
      userAgent: WIN_CHROME,
      headers: { 'x-geo-country': 'FR', 'x-geo-state': 'Ile-de-France', 'x-geo-city': 'Paris' },
      info: { userID: 'alice@acme.io', userAnonymousId: 'anon-a', userUUID: 'uuid-a', revID: 'rev-7', trackerVersion: '11.0.5', pageTitle: 'Checkout', metadata: { plan: 'trial', team: 'core' }, timestamp: base },
    });
    await connectTracker(hub, {
      projectKey: PK,
      sessionId: bob,
      userAgent: IPHONE_UA,
      headers: { 'x-geo-country': 'DE', 'x-geo-state': 'Berlin', 'x-geo-city': 'Berlin' },
      info: { userID: 'bob@other.org', userAnonymousId: 'anon-b', userUUID: 'uuid-b', revID: 'rev-8', trackerVersion: '12.0.0', pageTitle: 'Home', metadata: { plan: 'free', team: 'sales' }, timestamp: base + 1000 },
    });
    await connectTracker(hub, {
      projectKey: PK,
      sessionId: carol,
      userAgent: MAC_FIREFOX,
      headers: { 'x-geo-country': 'FR', 'x-geo-state': 'Auvergne-Rhone-Alpes', 'x-geo-city': 'Lyon' },
      info: { userID: 'carol@acme.io', userAnonymousId: 'anon-c', userUUID: 'uuid-c', revID: 'rev-7', trackerVersion: '11.0.5', pageTitle: 'Pricing', metadata: { plan: 'trial', team: 'sales' }, timestamp: base + 2000 },
    });
    for (const sid of [alice, bob, carol]) await waitSession(hub, PK, sid);
  });
  afterAll(async () => {
    await closeAllPeers();
    await hub.shutdown();
  });

  describe('sockets-live search (POST), as get_live_sessions_ws sends it', () => {
    /** The backend's body for one LiveFilterType filter, sorted by timestamp DESC, first page of 200. */
    const body = (filter: Record<string, unknown>) => ({ filter, pagination: { limit: 200, page: 1 }, sort: { key: 'timestamp', order: 'DESC' } });

    test.each([
      ['userId', ['acme'], 'contains', ['carol', 'alice']],
      ['userId', ['bob@other.org'], 'is', ['bob']],
      ['userAnonymousId', ['anon-b'], 'is', ['bob']],
      ['userOs', ['Windows'], 'is', ['alice']],
      ['userOs', ['macOS'], 'is', ['carol']],
      ['userBrowser', ['Mobile Safari'], 'is', ['bob']],
      ['userBrowser', ['fire'], 'contains', ['carol']],
      ['userBrowserVersion', ['124.0'], 'contains', ['alice']],
      ['userDevice', ['iPhone'], 'is', ['bob']],
      ['userDeviceType', ['mobile'], 'is', ['bob']],
      ['platform', ['desktop'], 'is', ['carol', 'alice']],
      ['userCountry', ['FR'], 'is', ['carol', 'alice']],
      ['userState', ['berlin'], 'is', ['bob']],
      ['userCity', ['Lyon', 'Paris'], 'is', ['carol', 'alice']],
      ['revId', ['rev-7'], 'is', ['carol', 'alice']],
      ['pageTitle', ['home'], 'contains', ['bob']],
      ['userUuid', ['uuid-c'], 'is', ['carol']],
      ['trackerVersion', ['12.'], 'contains', ['bob']],
      ['plan', ['trial'], 'is', ['carol', 'alice']],
      ['team', ['SALES'], 'is', ['carol', 'bob']],
    ])('%s %j (%s)', async (name, values, operator, expected) => {
      const ids = { alice, bob, carol } as Record<string, string>;
      const reply = await post(hub, live(), body({ [name]: { values, operator } }));
      expect(reply.status).toBe(200);
      expect(idsOf(reply)).toEqual(expected.map((n) => ids[n]));
      expect(pageOf(reply).total).toBe(expected.length);
    });

    test('sessionId', async () => {
      const reply = await post(hub, live(), body({ sessionId: { values: [bob], operator: 'is' } }));
      expect(idsOf(reply)).toEqual([bob]);
    });

    test('filters combine: all must hold, any value of one', async () => {
      const reply = await post(hub, live(), body({ userCountry: { values: ['FR'], operator: 'is' }, team: { values: ['sales', 'nobody'], operator: 'is' } }));
      expect(idsOf(reply)).toEqual([carol]);
    });

    test('the answer is {"data": {"total", "sessions"}} with the session fields OpenReplay shows', async () => {
      const reply = await post(hub, live(), body({ userId: { values: ['bob'], operator: 'contains' } }));
      const [s] = pageOf(reply).sessions;
      expect(s).toMatchObject({
        sessionID: bob,
        projectKey: PK,
        userID: 'bob@other.org',
        userOs: 'iOS',
        userBrowser: 'Mobile Safari',
        userDevice: 'iPhone',
        userDeviceType: 'mobile',
        userCountry: 'DE',
        userState: 'Berlin',
        userCity: 'Berlin',
        tabId: 'tab1',
        live: true,
        metadata: { plan: 'free', team: 'sales' },
      });
    });

    test('the plain form {"filter": {"userId": "x"}} (get_live_sessions_ws_user_id) filters by user', async () => {
      const reply = await post(hub, live(), { filter: { userId: 'carol@acme.io' } });
      expect(idsOf(reply)).toEqual([carol]);
      expect(idsOf(await post(hub, live(), { filter: {} }))).toEqual([carol, bob, alice]);
    });

    test('values given as one string are one value, not its characters', async () => {
      // Character by character, "trial" would match "free" through its "r".
      const reply = await post(hub, live(), body({ plan: { values: 'trial', operator: 'contains' } }));
      expect(idsOf(reply)).toEqual([carol, alice]);
    });

    test('an empty value asks for nothing: is "" leaves the filter out', async () => {
      expect(idsOf(await post(hub, live(), body({ userId: { values: [''], operator: 'is' } })))).toEqual([carol, bob, alice]);
      expect(idsOf(await post(hub, live(), body({ userId: { values: ['', 'bob@other.org'], operator: 'is' } })))).toEqual([bob]);
    });

    test('no operator is contains', async () => {
      expect(idsOf(await post(hub, live(), { filter: { userId: { values: ['acme'] } } }))).toEqual([carol, alice]);
    });

    test('an operator next to plain values applies to them (the backend\'s uxtId search)', async () => {
      expect(idsOf(await post(hub, live(), { filter: { plan: 'tri', operator: 'is' } }))).toEqual([]);
      expect(idsOf(await post(hub, live(), { filter: { plan: 'trial', operator: 'is' } }))).toEqual([carol, alice]);
    });

    test('pagination: pages of limit, total counts every match', async () => {
      const first = await post(hub, live(), { filter: {}, pagination: { limit: 2, page: 1 }, sort: { key: 'timestamp', order: 'DESC' } });
      expect(pageOf(first)).toMatchObject({ total: 3 });
      expect(idsOf(first)).toEqual([carol, bob]);
      const second = await post(hub, live(), { filter: {}, pagination: { limit: 2, page: 2 }, sort: { key: 'timestamp', order: 'DESC' } });
      expect(idsOf(second)).toEqual([alice]);
      expect(pageOf(second).total).toBe(3);
      const past = await post(hub, live(), { filter: {}, pagination: { limit: 2, page: 3 }, sort: { key: 'timestamp', order: 'DESC' } });
      expect(pageOf(past)).toEqual({ total: 3, sessions: [] });
    });

    test.each([
      ['timestamp', 'DESC', ['carol', 'bob', 'alice']],
      ['timestamp', 'ASC', ['alice', 'bob', 'carol']],
      ['TIMESTAMP', 'DESC', ['carol', 'bob', 'alice']],
      ['timestamp', null, ['carol', 'bob', 'alice']],
      ['startTs', 'DESC', ['carol', 'bob', 'alice']],
      ['duration', 'DESC', ['alice', 'bob', 'carol']],
      ['duration', 'ASC', ['carol', 'bob', 'alice']],
      ['userId', 'ASC', ['alice', 'bob', 'carol']],
      ['userId', 'DESC', ['carol', 'bob', 'alice']],
      ['userCity', 'ASC', ['bob', 'carol', 'alice']],
    ])('sort %s %s', async (key, order, expected) => {
      const ids = { alice, bob, carol } as Record<string, string>;
      const reply = await post(hub, live(), { filter: {}, pagination: { limit: 200, page: 1 }, sort: { key, order } });
      expect(idsOf(reply)).toEqual(expected.map((n) => ids[n]));
    });

    test.each([
      ['ASC', ['free', 'trial', 'trial']],
      ['DESC', ['trial', 'trial', 'free']],
    ])('sort by a metadata key (as OpenReplay\'s live list offers), %s', async (order, plans) => {
      const reply = await post(hub, live(), { filter: {}, pagination: { limit: 200, page: 1 }, sort: { key: 'plan', order } });
      expect(pageOf(reply).sessions.map((x) => (x.metadata as Record<string, string>).plan)).toEqual(plans);
    });

    test('no sort at all: newest first', async () => {
      expect(idsOf(await post(hub, live(), {}))).toEqual([carol, bob, alice]);
    });

    test('an unknown project has no sessions', async () => {
      const reply = await post(hub, live(projectKey('nobodyhere')), { filter: {} });
      expect(reply.status).toBe(200);
      expect(reply.json).toEqual({ data: { total: 0, sessions: [] } });
    });

    test.each([
      [{ filter: { userId: { values: ['x'], operator: 'startsWith' } } }, 400, /filter\.userId: operator must be "is" or "contains"/],
      [{ filter: [] }, 400, /filter: expected an object/],
      [{ sort: { key: 'timestamp', order: 'sideways' } }, 400, /sort\.order: must be ASC or DESC/],
      [{ pagination: { limit: -1, page: 1 } }, 400, /pagination\.limit/],
      [{ filter: { userId: { values: [{ a: 1 }] } } }, 400, /filter\.userId\.values: values must be strings/],
    ])('a bad body %j is a 400 naming the field, and changes nothing', async (bad, status, message) => {
      const reply = await post(hub, live(), bad);
      expect(reply.status).toBe(status);
      expect((reply.json as { error: { message: string } }).error.message).toMatch(message);
      expect(pageOf(await post(hub, live(), {})).total).toBe(3);
    });

    test('a body that is not JSON is a 400', async () => {
      const reply = await send(hub, live(), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"filter":' });
      expect(reply.status).toBe(400);
    });
  });

  describe('sockets-live list (GET)', () => {
    test('every live session of the project, newest first', async () => {
      const reply = await send(hub, live());
      expect(reply.status).toBe(200);
      expect(idsOf(reply)).toEqual([carol, bob, alice]);
    });

    test('?userId= filters by user (contains)', async () => {
      expect(idsOf(await send(hub, `${live()}?userId=acme`))).toEqual([carol, alice]);
    });
  });

  describe('one session, is_live and session_exists', () => {
    test('GET sockets-live/:projectKey/:sessionId answers {"data": session}', async () => {
      const reply = await send(hub, `${live()}/${alice}`);
      expect(reply.status).toBe(200);
      expect((reply.json as { data: Record<string, unknown> }).data).toMatchObject({ sessionID: alice, userID: 'alice@acme.io', userOs: 'Windows', userBrowser: 'Chrome', userDevice: null, tabId: 'tab1' });
    });

    test('GET sockets-list/:projectKey/:sessionId (is_live) answers the session id, which the backend compares with str(session_id)', async () => {
      const reply = await send(hub, `/assist/${ASSIST_KEY}/sockets-list/${PK}/${bob}`);
      expect(reply.status).toBe(200);
      expect(reply.json).toEqual({ data: bob });
    });

    test('an unknown session: {"data": null} on both', async () => {
      expect((await send(hub, `${live()}/123456789`)).json).toEqual({ data: null });
      expect((await send(hub, `/assist/${ASSIST_KEY}/sockets-list/${PK}/123456789`)).json).toEqual({ data: null });
    });

    test('an ended session: {"data": null} on both', async () => {
      const sid = newSessionId();
      const tab = await connectTracker(hub, { projectKey: PK, sessionId: sid });
      await waitSession(hub, PK, sid);
      expect((await send(hub, `/assist/${ASSIST_KEY}/sockets-list/${PK}/${sid}`)).json).toEqual({ data: sid });
      await tab.close();
      await waitNoSession(hub, PK, sid);
      expect((await send(hub, `${live()}/${sid}`)).json).toEqual({ data: null });
      expect((await send(hub, `/assist/${ASSIST_KEY}/sockets-list/${PK}/${sid}`)).json).toEqual({ data: null });
    });
  });

  describe('autocomplete, as the backend calls it (sockets-list/:projectKey/autocomplete?q=&key=)', () => {
    const ac = async (query: string, family = 'sockets-list') => {
      const reply = await send(hub, `/assist/${ASSIST_KEY}/${family}/${PK}/autocomplete?${query}`);
      expect(reply.status).toBe(200);
      return (reply.json as { data: Array<{ type: string; value: string }> }).data;
    };

    test('q and key: the values of that attribute containing q, typed as the reference types them', async () => {
      const data = await ac('q=ACME&key=userId');
      expect(data).toEqual(expect.arrayContaining([{ type: 'USERID', value: 'alice@acme.io' }, { type: 'USERID', value: 'carol@acme.io' }]));
      expect(data).toHaveLength(2);
    });

    test('a metadata key', async () => {
      expect(await ac('q=tr&key=plan')).toEqual([{ type: 'PLAN', value: 'trial' }]);
    });

    test('q alone looks through every attribute and metadata key', async () => {
      const data = await ac('q=sales');
      expect(data).toEqual([{ type: 'TEAM', value: 'sales' }]);
      expect(await ac('q=berlin')).toEqual(expect.arrayContaining([{ type: 'USERSTATE', value: 'Berlin' }, { type: 'USERCITY', value: 'Berlin' }]));
    });

    test('the same under sockets-live', async () => {
      expect(await ac('q=bob&key=userId', 'sockets-live')).toEqual([{ type: 'USERID', value: 'bob@other.org' }]);
    });

    test('neither q nor key: an empty list', async () => {
      expect(await ac('')).toEqual([]);
    });
  });

  describe('the key in the path', () => {
    test('a wrong key is a 404, as the reference answers it', async () => {
      expect((await post(hub, live(PK, 'not-the-assist-key'), { filter: {} })).status).toBe(404);
      expect((await send(hub, `/assist/not-the-assist-key/sockets-list/${PK}/${alice}`)).status).toBe(404);
      expect((await send(hub, `/assist/${ASSIST_KEY}x/sockets-live/${PK}`)).status).toBe(404);
    });

    test('the prefix and the key answer "ok!" (the reference\'s liveness check)', async () => {
      expect(await send(hub, '/assist')).toMatchObject({ status: 200, text: 'ok!' });
      expect(await send(hub, `/assist/${ASSIST_KEY}`)).toMatchObject({ status: 200, text: 'ok!' });
    });
  });
});

/** A hub whose log lines are kept, to read what the start says. */
async function hubWithLog(env: Record<string, string>): Promise<{ hub: Hub; lines: string[] }> {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  const config = loadConfig({ LISTEN_HOST: '127.0.0.1', LISTEN_PORT: '0', LOG_LEVEL: 'info', ...env });
  const hub = await startHub(config, { logger: pino({ level: 'info' }, sink) });
  return { hub, lines };
}

describe('OpenReplay internal API settings', () => {
  test('the start log says once whether the internal API is off or on, never with the key', async () => {
    const off = await hubWithLog({});
    await off.hub.shutdown();
    expect(off.lines.filter((l) => l.includes('ASSIST_KEY is not set'))).toHaveLength(1);
    const on = await hubWithLog({ ASSIST_KEY });
    await on.hub.shutdown();
    expect(on.lines.filter((l) => l.includes("OpenReplay's internal API is on"))).toHaveLength(1);
    expect(on.lines.join('\n')).not.toContain(ASSIST_KEY);
  });

  test('without ASSIST_KEY the routes are off', async () => {
    const hub = await startLiveHub();
    try {
      expect((await post(hub, live(), { filter: {} })).status).toBe(404);
      expect((await send(hub, '/assist')).status).toBe(404);
    } finally {
      await hub.shutdown();
    }
  });

  test('PREFIX moves them', async () => {
    const hub = await startLiveHub({ ASSIST_KEY, PREFIX: '/peers/assist' });
    try {
      const sid = newSessionId();
      await connectTracker(hub, { projectKey: PK, sessionId: sid });
      await waitSession(hub, PK, sid);
      expect((await send(hub, `/peers/assist/${ASSIST_KEY}/sockets-list/${PK}/${sid}`)).json).toEqual({ data: sid });
      expect((await send(hub, `/assist/${ASSIST_KEY}/sockets-list/${PK}/${sid}`)).status).toBe(404);
    } finally {
      await closeAllPeers();
      await hub.shutdown();
    }
  });

  test('REST_RATE_LIMIT holds for ASSIST_KEY too: one bucket, 429 RATE_LIMITED past the burst', async () => {
    const hub = await startLiveHub({ ASSIST_KEY, REST_RATE_LIMIT: '1' });
    try {
      const statuses: number[] = [];
      // A burst of twice the rate, across routes: the key has one bucket, not one per route.
      statuses.push((await post(hub, live(), { filter: {} })).status);
      statuses.push((await send(hub, `/assist/${ASSIST_KEY}/sockets-list/${PK}/1`)).status);
      const limited = await post(hub, live(), { filter: {} });
      statuses.push(limited.status);
      expect(statuses).toEqual([200, 200, 429]);
      expect((limited.json as { error?: { code?: string } }).error?.code).toBe('RATE_LIMITED');
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      // A wrong key is no match at all: it spends nothing and is told 404, not 429.
      expect((await post(hub, live(PK, 'not-the-assist-key'), { filter: {} })).status).toBe(404);
    } finally {
      await hub.shutdown();
    }
  });
});
