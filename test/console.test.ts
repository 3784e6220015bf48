/**
 * The console without a browser: its HTTP answers (static files, config, CONSOLE=false) on a real
 * hub, and its pure logic (console/model.ts): the URL form of a query, curl commands, what changed
 * between two renders, the chart.
 */
import type { Session } from '../src/sessions/model';
import type { Hub } from '../src/server';
import {
  addSample,
  chartArea,
  chartPath,
  compareViews,
  curlForQuery,
  curlForSession,
  defaultQuery,
  niceMax,
  readQuery,
  sessionFields,
  shellQuote,
  timeLive,
  toSubscription,
  writeQuery,
  type ConsoleQuery,
} from '../console/model';
import { API_KEY, startTestHub } from './support/hub';

describe('served by the hub', () => {
  let hub: Hub;
  let off: Hub;
  beforeAll(async () => {
    hub = await startTestHub({ WS_PATH: '/custom/socket' });
    off = await startTestHub({ CONSOLE: 'false' });
  });
  afterAll(async () => {
    await hub?.shutdown();
    await off?.shutdown();
  });

  test('the page, its script and style, with a strict Content-Security-Policy', async () => {
    const page = await fetch(`${hub.url}/console/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.headers.get('content-security-policy')).toContain("connect-src 'self'");
    const html = await page.text();
    expect(html).toContain('src="app.js"');
    expect(html).not.toMatch(/https?:\/\//);
    for (const [file, type] of [['app.js', /^text\/javascript/], ['style.css', /^text\/css/], ['icon.svg', /^image\/svg/]] as const) {
      const res = await fetch(`${hub.url}/console/${file}`);
      expect({ file, status: res.status }).toEqual({ file, status: 200 });
      expect(res.headers.get('content-type')).toMatch(type);
    }
  });

  test('/console redirects to /console/ with its query; config.json gives the Socket.IO path', async () => {
    const res = await fetch(`${hub.url}/console?project=abc`, { redirect: 'manual' });
    expect(res.status).toBe(308);
    expect(res.headers.get('location')).toBe('/console/?project=abc');
    expect(await (await fetch(`${hub.url}/console/config.json`)).json()).toEqual({ wsPath: '/custom/socket' });
  });

  test('no other file, no other method', async () => {
    const missing = await fetch(`${hub.url}/console/../package.json`);
    expect(missing.status).toBe(404);
    const other = await fetch(`${hub.url}/console/secrets.txt`);
    expect(other.status).toBe(404);
    expect(((await other.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
    const post = await fetch(`${hub.url}/console/`, { method: 'POST', body: '{}' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect(((await post.json()) as { error: { code: string } }).error.code).toBe('METHOD_NOT_ALLOWED');
  });

  test('CONSOLE=false: the console paths are the JSON 404, the API is unchanged', async () => {
    const res = await fetch(`${off.url}/console/`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
    const api = await fetch(`${off.url}/api/v1/abcdefghijklmnopqrst/assist/sessions`, { headers: { authorization: API_KEY } });
    expect(api.status).toBe(200);
  });
});

function session(id: string, extra: Partial<Session> = {}): Session {
  return {
    sessionID: id, projectKey: 'p', projectId: null, pageTitle: 'Home', active: true, live: true, userID: `u${id}`, userUUID: '', userAnonymousId: '',
    metadata: {}, revID: '', timestamp: 1_000, trackerVersion: '', isSnippet: false, assistOnly: false, userOs: 'Windows', userBrowser: 'Chrome',
    userBrowserVersion: '124.0.1', userDevice: null, userDeviceType: 'desktop', userCountry: null, userState: null, userCity: null, tabIds: ['t1'], tabId: 't1',
    ...extra,
  };
}

describe('console/model', () => {
  const query: ConsoleQuery = {
    project: 'proj_1',
    filters: [
      { type: 'METADATA', operator: 'is', source: 'plan', values: ['trial', "o'brien"] },
      { type: 'USERID', operator: 'contains', source: '', values: [] },
    ],
    sort: 'userID',
    order: 'ASC',
    limit: 20,
  };

  test('a query survives the URL, which holds no key and drops what is malformed', () => {
    const search = writeQuery(query);
    expect(readQuery(search)).toEqual(query);
    expect(search).not.toMatch(/key|token/i);
    expect(readQuery('?project=p&filters=not-json&limit=9999&order=sideways')).toEqual(defaultQuery('p'));
    expect(readQuery('?project=p&filters={"type":"USERID"}').filters).toEqual([]);
    expect(readQuery('?filters=[{"type":"userid","value":"x"},42]').filters).toEqual([{ type: 'USERID', operator: 'contains', source: '', values: ['x'] }]);
  });

  test('the subscription is the REST grammar: source only on METADATA', () => {
    expect(toSubscription(query)).toEqual({
      projectKey: 'proj_1',
      filters: [
        { type: 'METADATA', operator: 'is', value: ['trial', "o'brien"], source: 'plan' },
        { type: 'USERID', operator: 'contains', value: [] },
      ],
      sort: 'userID',
      order: 'ASC',
      limit: 20,
    });
  });

  test('curl commands quote for the shell and never hold the key', () => {
    const curl = curlForQuery('http://127.0.0.1:9001', query);
    expect(curl).toContain('"Authorization: $HUB_API_KEY"');
    expect(curl).toContain(`'http://127.0.0.1:9001/api/v1/proj_1/assist/sessions'`.replace(/'/g, ''));
    expect(curl).toContain(`o'\\''brien`);
    expect(curlForSession('http://h', 'p', 'a b')).toBe(`curl -s -H "Authorization: $HUB_API_KEY" http://h/api/v1/p/assist/sessions/a%20b`);
    expect(shellQuote('plain-word')).toBe('plain-word');
    expect(shellQuote('two words')).toBe(`'two words'`);
  });

  test('compareViews: added, updated (by content), removed; identical content is no change', () => {
    const a = session('a');
    const b = session('b');
    const before = new Map([
      ['a', a],
      ['b', b],
    ]);
    const changes = compareViews(before, [{ ...a }, session('b', { userID: 'new' }), session('c')]);
    expect([...changes].sort()).toEqual([
      ['b', 'updated'],
      ['c', 'added'],
    ]);
    expect([...compareViews(before, [a])]).toEqual([['b', 'removed']]);
  });

  test('timeLive', () => {
    expect(timeLive(61_000, 1_000)).toBe('1m 00s');
    expect(timeLive(1_000, 5_000)).toBe('0s');
    expect(timeLive(3_600_000 * 2 + 7 * 60_000, 0)).toBe('2h 07m');
    expect(timeLive(86_400_000 * 3 + 3_600_000 * 4, 0)).toBe('3d 4h');
  });

  test('chart: samples kept for the window (and the last one before it), a step path, a round scale', () => {
    let samples = addSample([], { t: 0, total: 1 }, 100);
    samples = addSample(samples, { t: 50, total: 3 }, 100);
    samples = addSample(samples, { t: 150, total: 2 }, 100);
    samples = addSample(samples, { t: 160, total: 4 }, 100);
    expect(samples).toEqual([
      { t: 50, total: 3 },
      { t: 150, total: 2 },
      { t: 160, total: 4 },
    ]);
    const line = chartPath(samples, 160, 100, 100, 10, 4);
    expect(line).toBe('M0 2.5 H90 V5 H100 V0 H100');
    expect(chartArea(line, 10)).toBe('M0 10 V2.5 H90 V5 H100 V0 H100 V10 Z');
    expect(chartPath([], 0, 1, 1, 1, 1)).toBe('');
    expect([0, 1, 3, 7, 10, 11, 180].map(niceMax)).toEqual([1, 1, 5, 10, 10, 20, 200]);
  });

  test('the panel lists every field, extra tracker fields included', () => {
    const fields = sessionFields(session('a', { custom: { x: 1 } }));
    expect(fields[0]).toEqual(['sessionID', 'a']);
    expect(fields).toContainEqual(['timestamp', '1000 (1970-01-01T00:00:01.000Z)']);
    expect(fields).toContainEqual(['custom', '{"x":1}']);
    expect(fields).toContainEqual(['userCountry', '—']);
    expect(fields).toHaveLength(Object.keys(session('a', { custom: {} })).length);
  });
});
