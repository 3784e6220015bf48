/**
 * The public REST API against a whole hub: real trackers announce sessions over Socket.IO, and the
 * list, search, one-session and autocomplete routes must show exactly what they announced.
 */
import { type IncomingHttpHeaders, request } from 'node:http';
import { gunzipSync } from 'node:zlib';
import type { Socket } from 'socket.io-client';
import type { Hub } from '../src/server';
import { startTestHub } from './support/hub';
import { SPEC_EXAMPLE_SEARCH } from './support/sessions';
import { API_KEYS_SPEC, KEY_A, KEY_ALL, PROJECT_A, PROJECT_B, type Reply, call, errorOf, page, sessionsPath } from './support/http';
import { connectTracker } from './support/live';
import { eventually } from './support/wait';

const P = PROJECT_A;
const Q = PROJECT_B;
const UA = {
  chromeMac: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
  firefoxWin: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0',
  // Longer than 128 characters, like many real mobile User-Agents.
  safariIphone: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1',
};

/** Five sessions of P (timestamps chosen so that timestamp order differs from userID order) and one of Q. */
const TRACKERS = [
  { projectKey: P, sessionId: '101', ua: UA.chromeMac, info: { userID: 'alice@openreplay.com', timestamp: 1000, pageTitle: 'Blog', metadata: { plan: 'trial', team: 'Core' } } },
  { projectKey: P, sessionId: '102', ua: UA.firefoxWin, info: { userID: 'Bob', timestamp: 3000, pageTitle: 'Pricing', metadata: { plan: 'free' } } },
  { projectKey: P, sessionId: '103', ua: UA.safariIphone, info: { userID: 'carol@OpenReplay.com', timestamp: 2000, pageTitle: 'Docs', metadata: { plan: 'Enterprise' } } },
  { projectKey: P, sessionId: '104', ua: UA.chromeMac, info: { timestamp: 4000, pageTitle: 'Home' } },
  { projectKey: P, sessionId: '105', ua: UA.chromeMac, info: { userID: 'dave', timestamp: 5000, pageTitle: 'Home', revID: 'r-7' } },
  { projectKey: Q, sessionId: '901', ua: UA.chromeMac, info: { userID: 'alice@openreplay.com', timestamp: 9000, pageTitle: 'Other', metadata: { plan: 'trial' } } },
];

let hub: Hub;
const sockets = new Map<string, Socket>();

const ids = (reply: Reply): unknown[] => page(reply).sessions.map((s) => s.sessionID);
const search = (body: unknown, project = P): Promise<Reply> => call(hub.url, sessionsPath(project), { body });

beforeAll(async () => {
  hub = await startTestHub({ HUB_API_KEYS: API_KEYS_SPEC });
  for (const t of TRACKERS) {
    const socket = (await connectTracker(hub, { minimalInfo: true, projectKey: t.projectKey, sessionId: t.sessionId, tabId: 'tab1', info: t.info, userAgent: t.ua })).socket;
    sockets.set(t.sessionId, socket);
  }
  await eventually(
    async () => page(await call(hub.url, sessionsPath(P))).total === 5,
    () => 'the five trackers of P never all showed up in the list',
  );
});

afterAll(async () => {
  for (const s of sockets.values()) s.disconnect();
  await hub.shutdown();
});

describe('list (GET)', () => {
  it('returns every live session of the project, newest first, with the fields the tracker announced and the hub derived', async () => {
    const reply = await call(hub.url, sessionsPath(P));
    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-type')).toMatch(/^application\/json/);
    expect(page(reply).total).toBe(5);
    expect(ids(reply)).toEqual(['105', '104', '102', '103', '101']);
    const alice = page(reply).sessions.find((s) => s.sessionID === '101');
    expect(alice).toMatchObject({
      projectKey: P,
      userID: 'alice@openreplay.com',
      pageTitle: 'Blog',
      metadata: { plan: 'trial', team: 'Core' },
      timestamp: 1000,
      live: true,
      userBrowser: 'Chrome',
      userOs: 'macOS',
      userDevice: 'Macintosh',
      userDeviceType: 'desktop',
    });
    const carol = page(reply).sessions.find((s) => s.sessionID === '103');
    expect(carol).toMatchObject({ userOs: 'iOS', userBrowser: 'Mobile Safari', userDevice: 'iPhone', userDeviceType: 'mobile' });
  });

  it('answers HEAD with the headers of the GET and no body', async () => {
    const identity = { 'accept-encoding': 'identity' };
    const get = await call(hub.url, sessionsPath(P), { headers: identity });
    const head = await call(hub.url, sessionsPath(P), { method: 'HEAD', headers: identity });
    expect([head.status, head.text, head.headers.get('content-length')]).toEqual([200, '', String(Buffer.byteLength(get.text))]);
  });

  it('never shows another project’s sessions', async () => {
    const reply = await call(hub.url, sessionsPath(Q));
    expect(ids(reply)).toEqual(['901']);
  });

  it('filters by ?userId= as a case-insensitive "contains"', async () => {
    const reply = await call(hub.url, `${sessionsPath(P)}?userId=OPENreplay`);
    expect(reply.status).toBe(200);
    expect(page(reply).total).toBe(2);
    expect(ids(reply)).toEqual(['103', '101']);
  });

  it('pages with ?page= and ?limit=, total counting every match', async () => {
    const reply = await call(hub.url, `${sessionsPath(P)}?page=2&limit=2`);
    expect(page(reply).total).toBe(5);
    expect(ids(reply)).toEqual(['102', '103']);
  });

  it('sorts with ?sort= and ?order=', async () => {
    const reply = await call(hub.url, `${sessionsPath(P)}?sort=timestamp&order=asc`);
    expect(ids(reply)).toEqual(['101', '103', '102', '104', '105']);
  });
});

describe('search (POST)', () => {
  it('answers the spec’s example: METADATA plan is trial|free and USERID contains openreplay', async () => {
    const reply = await search(SPEC_EXAMPLE_SEARCH);
    expect(reply.status).toBe(200);
    expect(page(reply)).toMatchObject({ total: 1 });
    expect(ids(reply)).toEqual(['101']);
  });

  it('defaults to every session, newest first, for an empty body', async () => {
    expect(ids(await search({}))).toEqual(['105', '104', '102', '103', '101']);
    expect(ids(await call(hub.url, sessionsPath(P), { method: 'POST' }))).toEqual(['105', '104', '102', '103', '101']);
  });

  it('tells "is" (whole value) from "contains" (substring), both case-insensitive', async () => {
    expect(ids(await search({ filters: [{ type: 'USERID', value: ['BOB'], operator: 'is' }] }))).toEqual(['102']);
    expect(ids(await search({ filters: [{ type: 'USERID', value: ['bo'], operator: 'is' }] }))).toEqual([]);
    expect(ids(await search({ filters: [{ type: 'USERID', value: ['bo'], operator: 'contains' }] }))).toEqual(['102']);
    expect(ids(await search({ filters: [{ type: 'USERID', value: ['bo'] }] }))).toEqual(['102']);
  });

  it('matches any of several values, accepts a single string and a lower-case type', async () => {
    expect(ids(await search({ filters: [{ type: 'userid', value: ['dave', 'bob'], operator: 'is' }] }))).toEqual(['105', '102']);
    expect(ids(await search({ filters: [{ type: 'USERID', value: 'DAVE', operator: 'is' }] }))).toEqual(['105']);
  });

  it('filters METADATA by its source key, case-insensitively', async () => {
    expect(ids(await search({ filters: [{ type: 'METADATA', source: 'plan', value: ['enterprise'], operator: 'is' }] }))).toEqual(['103']);
    expect(ids(await search({ filters: [{ type: 'METADATA', source: 'team', value: ['core'] }] }))).toEqual(['101']);
  });

  it('treats an empty value array as "has this attribute"', async () => {
    const reply = await search({ filters: [{ type: 'METADATA', source: 'plan', value: [] }] });
    expect(page(reply).total).toBe(3);
    expect(ids(reply)).toEqual(['102', '103', '101']);
    expect(ids(await search({ filters: [{ type: 'REVID', value: [] }] }))).toEqual(['105']);
    expect(page(await search({ filters: [{ type: 'USERID', value: [] }] })).total).toBe(4);
  });

  it('filters on fields derived from the handshake (browser, device type via the PLATFORM alias)', async () => {
    expect(ids(await search({ filters: [{ type: 'USERBROWSER', value: ['firefox'], operator: 'is' }] }))).toEqual(['102']);
    expect(ids(await search({ filters: [{ type: 'PLATFORM', value: ['mobile'], operator: 'is' }] }))).toEqual(['103']);
  });

  it('sorts by timestamp in both orders (ASC ascending)', async () => {
    expect(ids(await search({ sort: 'timestamp', order: 'ASC' }))).toEqual(['101', '103', '102', '104', '105']);
    expect(ids(await search({ sort: 'timestamp', order: 'DESC' }))).toEqual(['105', '104', '102', '103', '101']);
  });

  it('sorts by a text attribute in both orders, case-insensitively, sessions without it last', async () => {
    expect(ids(await search({ sort: 'userID', order: 'asc' }))).toEqual(['101', '102', '103', '105', '104']);
    expect(ids(await search({ sort: 'userID', order: 'desc' }))).toEqual(['105', '103', '102', '101', '104']);
  });

  it('sorts by a metadata value with sort "metadata.<key>", sessions without it last', async () => {
    // plan: 101 trial, 102 free, 103 Enterprise; 104 and 105 have none (ties by sessionID).
    expect(ids(await search({ sort: 'metadata.plan', order: 'ASC' }))).toEqual(['103', '102', '101', '104', '105']);
    expect(ids(await search({ sort: 'metadata.plan', order: 'DESC' }))).toEqual(['101', '102', '103', '104', '105']);
  });

  it('pages: total counts all matches, pages do not overlap, past the end is empty', async () => {
    const first = await search({ sort: 'timestamp', order: 'ASC', limit: 2, page: 1 });
    const second = await search({ sort: 'timestamp', order: 'ASC', limit: 2, page: 2 });
    const third = await search({ sort: 'timestamp', order: 'ASC', limit: 2, page: 3 });
    const beyond = await search({ sort: 'timestamp', order: 'ASC', limit: 2, page: 4 });
    expect([page(first).total, page(second).total, page(third).total, page(beyond).total]).toEqual([5, 5, 5, 5]);
    expect([ids(first), ids(second), ids(third), ids(beyond)]).toEqual([['101', '103'], ['102', '104'], ['105'], []]);
  });

  it('keeps cached responses apart per project and per page', async () => {
    const body = { filters: [{ type: 'METADATA', source: 'plan', value: ['trial'], operator: 'is' }] };
    expect(ids(await search(body, P))).toEqual(['101']);
    expect(ids(await search(body, Q))).toEqual(['901']);
    expect(ids(await search({ ...body, page: 2 }, P))).toEqual([]);
    expect(ids(await search(body, P))).toEqual(['101']);
  });

  it('accepts a JSON body whatever its Content-Type (curl -d sends form-encoded)', async () => {
    const reply = await call(hub.url, sessionsPath(P), {
      body: JSON.stringify({ filters: [{ type: 'USERID', value: 'dave', operator: 'is' }] }),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(ids(reply)).toEqual(['105']);
  });
});

describe('gzip', () => {
  /** A GET with the given Accept-Encoding, body as received (fetch would decompress it). */
  function rawGet(path: string, acceptEncoding: string): Promise<{ headers: IncomingHttpHeaders; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const req = request(`${hub.url}${path}`, { headers: { authorization: KEY_ALL, 'accept-encoding': acceptEncoding } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('sends list and search pages gzip-compressed to clients that accept it, the same JSON', async () => {
    const plain = await rawGet(sessionsPath(P), 'identity');
    const gzipped = await rawGet(sessionsPath(P), 'gzip, deflate, br');
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect([gzipped.headers['content-encoding'], gzipped.headers.vary, plain.headers.vary]).toEqual(['gzip', 'Accept-Encoding', 'Accept-Encoding']);
    expect(Number(gzipped.headers['content-length'])).toBe(gzipped.body.byteLength);
    expect(gunzipSync(gzipped.body).toString()).toBe(plain.body.toString());
    expect(gzipped.body.byteLength).toBeLessThan(plain.body.byteLength);
  });

  it('leaves small pages, other routes and refusing clients uncompressed', async () => {
    const small = await rawGet(`${sessionsPath(P)}?limit=1&userId=nobody-matches-this`, 'gzip');
    expect(small.headers['content-encoding']).toBeUndefined();
    const one = await rawGet(sessionsPath(P, '/101'), 'gzip');
    expect(one.headers['content-encoding']).toBeUndefined();
    const refused = await rawGet(sessionsPath(P), 'gzip;q=0, identity');
    expect(refused.headers['content-encoding']).toBeUndefined();
  });
});

describe('one session', () => {
  it('returns {data: session}', async () => {
    const reply = await call(hub.url, sessionsPath(P, '/102'));
    expect(reply.status).toBe(200);
    expect((reply.json as { data: Record<string, unknown> }).data).toMatchObject({ sessionID: '102', userID: 'Bob', pageTitle: 'Pricing', userBrowser: 'Firefox' });
  });

  it('is 404 for an unknown session and for another project’s session', async () => {
    const unknown = await call(hub.url, sessionsPath(P, '/999'));
    expect(unknown.status).toBe(404);
    expect(errorOf(unknown).code).toBe('NOT_FOUND');
    const other = await call(hub.url, sessionsPath(P, '/901'));
    expect(other.status).toBe(404);
  });
});

describe('autocomplete', () => {
  const autocomplete = (qs: string, key?: string): Promise<Reply> => call(hub.url, `/api/v1/${P}/assist/autocomplete?${qs}`, key ? { key } : {});
  const values = (reply: Reply): unknown[] => ((reply.json as { data: Array<{ value: unknown }> }).data ?? []).map((d) => d.value).sort();

  it('returns distinct values containing q, case-insensitively, as {type, value}', async () => {
    const reply = await autocomplete('type=USERID&q=OPENrep');
    expect(reply.status).toBe(200);
    expect((reply.json as { data: unknown[] }).data).toEqual(
      expect.arrayContaining([
        { type: 'USERID', value: 'alice@openreplay.com' },
        { type: 'USERID', value: 'carol@OpenReplay.com' },
      ]),
    );
    expect(values(reply)).toHaveLength(2);
  });

  it('returns every value for an empty q, deduplicated', async () => {
    expect(values(await autocomplete('type=userOs'))).toEqual(['Windows', 'iOS', 'macOS']);
    expect(values(await autocomplete('type=USERBROWSER&q='))).toEqual(['Chrome', 'Firefox', 'Mobile Safari']);
  });

  it('reads a METADATA key named by source', async () => {
    expect(values(await autocomplete('type=METADATA&source=plan&q='))).toEqual(['Enterprise', 'free', 'trial'].sort());
  });

  it('caps the number of values with limit', async () => {
    expect(values(await autocomplete('type=USERID&limit=1'))).toHaveLength(1);
  });

  it('refuses a missing or unknown type, METADATA without source and a bad limit', async () => {
    for (const qs of ['q=a', 'type=NOPE', 'type=METADATA&q=a', 'type=USERID&limit=0', 'type=USERID&limit=201', 'type=USERID&limit=ten']) {
      const reply = await autocomplete(qs);
      expect([qs, reply.status]).toEqual([qs, 400]);
      expect(errorOf(reply).code).toBe('BAD_REQUEST');
    }
    expect(errorOf(await autocomplete('type=METADATA')).message).toMatch(/^source:/);
    expect(errorOf(await autocomplete('type=USERID&limit=0')).message).toMatch(/^limit:/);
  });

  it('is guarded by the API key like the other routes', async () => {
    expect((await call(hub.url, `/api/v1/${Q}/assist/autocomplete?type=USERID`, { key: KEY_A })).status).toBe(403);
  });
});

describe('changes reach REST (the search cache never serves a stale page)', () => {
  it('shows UPDATE_SESSION changes in a search that was just cached', async () => {
    const byUser = (value: string) => ({ filters: [{ type: 'USERID', value: [value], operator: 'is' }] });
    const before = await search(byUser('bob'));
    expect(ids(before)).toEqual(['102']);
    expect(ids(await search(byUser('bob')))).toEqual(['102']);

    sockets.get('102')?.emit('UPDATE_SESSION', { meta: { tabId: 'tab1' }, data: { userID: 'robert', metadata: { team: 'Sales' }, pageTitle: 'Checkout' } });
    await eventually(async () => page(await search(byUser('bob'))).total === 0, () => 'the search for the old userID still finds the session');

    const after = await search(byUser('robert'));
    expect(ids(after)).toEqual(['102']);
    // The changed metadata key is merged in, the other one survives.
    expect(page(after).sessions[0]).toMatchObject({ userID: 'robert', pageTitle: 'Checkout', metadata: { plan: 'free', team: 'Sales' } });
    expect((await call(hub.url, sessionsPath(P, '/102'))).json).toMatchObject({ data: { userID: 'robert' } });
  });

  it('drops a session whose last tab left from the list, the search and the one-session route', async () => {
    const extra = (await connectTracker(hub, { minimalInfo: true, projectKey: P, sessionId: '106', tabId: 'tab1', info: { userID: 'erin', timestamp: 6000 } })).socket;
    await eventually(async () => page(await call(hub.url, sessionsPath(P))).total === 6, () => 'session 106 never appeared');
    expect(ids(await call(hub.url, `${sessionsPath(P)}?limit=1`))).toEqual(['106']);

    extra.disconnect();
    await eventually(async () => page(await call(hub.url, sessionsPath(P))).total === 5, () => 'session 106 never left the list');
    expect(ids(await call(hub.url, `${sessionsPath(P)}?limit=1`))).toEqual(['105']);
    expect((await call(hub.url, sessionsPath(P, '/106'))).status).toBe(404);
  });
});
