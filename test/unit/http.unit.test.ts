/** The REST layer's pure parts: route matching, the token buckets, the session JSON and search response caches, error mapping. */
import { gunzipSync } from 'node:zlib';
import { ErrorCode, HubError } from '../../src/errors';
import { toHubError } from '../../src/http/errors';
import { TokenBuckets } from '../../src/http/rateLimit';
import { EncodedBody, SearchResponses, SessionJson } from '../../src/http/searchResponses';
import { acceptsGzip, matchSessionRoute } from '../../src/http/sessions';
import type { Session } from '../../src/sessions/model';
import { parseSearchQuery, type SearchQuery } from '../../src/sessions/query';
import { SessionIndex } from '../../src/sessions/sessionIndex';
import { PROJECT_A, PROJECT_B, addSession } from '../support/http';

function q(body: unknown): SearchQuery {
  const parsed = parseSearchQuery(body);
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.value;
}

describe('TokenBuckets', () => {
  it('allows a burst of twice the rate, then one request per 1/rate seconds', () => {
    let now = 0;
    const buckets = new TokenBuckets(5, 100, () => now);
    const first = Array.from({ length: 11 }, () => buckets.take('k').ok);
    expect(first).toEqual([...Array(10).fill(true), false]);
    now += 199; // 0.995 tokens
    expect(buckets.take('k')).toEqual({ ok: false, retryAfterSeconds: 1 });
    now += 2;
    expect(buckets.take('k').ok).toBe(true);
    expect(buckets.take('k').ok).toBe(false);
  });

  it('never holds more than the burst, however long idle', () => {
    let now = 0;
    const buckets = new TokenBuckets(1, 100, () => now);
    buckets.take('k');
    now += 3_600_000;
    expect([buckets.take('k').ok, buckets.take('k').ok, buckets.take('k').ok]).toEqual([true, true, false]);
  });

  it('keeps one bucket per id', () => {
    const buckets = new TokenBuckets(1, 100, () => 0);
    expect([buckets.take('a').ok, buckets.take('a').ok, buckets.take('a').ok]).toEqual([true, true, false]);
    expect(buckets.take('b').ok).toBe(true);
  });

  it('says how long to wait at a slow rate', () => {
    // A rate of 1/s can refill a token within a second; the Retry-After is whole seconds, at least 1.
    const buckets = new TokenBuckets(1, 100, () => 0);
    buckets.take('k');
    buckets.take('k');
    expect(buckets.take('k')).toEqual({ ok: false, retryAfterSeconds: 1 });
  });

  it('bounds the number of buckets', () => {
    const buckets = new TokenBuckets(1, 2, () => 0);
    buckets.take('a');
    buckets.take('a');
    expect(buckets.take('a').ok).toBe(false);
    buckets.take('b');
    buckets.take('c'); // evicts a: it starts full again
    expect(buckets.take('a').ok).toBe(true);
  });
});

describe('SessionJson', () => {
  function views(count: number) {
    const index = new SessionIndex();
    for (let i = 1; i <= count; i++) addSession(index, PROJECT_A, String(i), { userID: `u${i}` });
    return { index, view: (id: string) => index.session(PROJECT_A, id) as Session };
  }

  it('serialises a view once, and a changed session again', () => {
    const { index, view } = views(1);
    const cache = new SessionJson(10);
    const json = cache.of(view('1'));
    expect(JSON.parse(json)).toEqual(view('1'));
    expect(cache.of(view('1'))).toBe(json);
    addSession(index, PROJECT_A, '1', { userID: 'changed' });
    expect(JSON.parse(cache.of(view('1'))).userID).toBe('changed');
  });

  it('peek answers from the cache when it can and keeps nothing new', () => {
    const { view } = views(2);
    const cache = new SessionJson(10);
    const kept = cache.of(view('1'));
    expect(cache.peek(view('1'))).toBe(kept);
    const stringify = jest.spyOn(JSON, 'stringify');
    try {
      expect(JSON.parse(cache.peek(view('2')))).toEqual(view('2'));
      cache.peek(view('2'));
      expect(stringify).toHaveBeenCalledTimes(2);
    } finally {
      stringify.mockRestore();
    }
  });

  it('keeps at most its size, the least recently read going first; 0 keeps nothing', () => {
    const { view } = views(3);
    const stringify = jest.spyOn(JSON, 'stringify');
    try {
      const cache = new SessionJson(2);
      cache.of(view('1'));
      cache.of(view('2'));
      cache.of(view('1'));
      expect(stringify).toHaveBeenCalledTimes(2);
      cache.of(view('3'));
      cache.of(view('1'));
      expect(stringify).toHaveBeenCalledTimes(3);
      cache.of(view('2'));
      expect(stringify).toHaveBeenCalledTimes(4);
      const none = new SessionJson(0);
      none.of(view('1'));
      none.of(view('1'));
      expect(stringify).toHaveBeenCalledTimes(6);
    } finally {
      stringify.mockRestore();
    }
  });
});

describe('SearchResponses', () => {
  it('builds {data: {total, sessions}} from each session’s JSON', () => {
    const index = new SessionIndex();
    addSession(index, PROJECT_A, '1', { userID: 'a', timestamp: 1 });
    addSession(index, PROJECT_A, '2', { userID: 'b', timestamp: 2 });
    const body = new SearchResponses(index, new SessionJson(10), 10).body(PROJECT_A, q({ limit: 1 }));
    const parsed = JSON.parse(body.json.toString()) as { data: { total: number; sessions: Array<{ sessionID: string }> } };
    expect(parsed.data.total).toBe(2);
    expect(parsed.data.sessions.map((s) => s.sessionID)).toEqual(['2']);
    expect(parsed.data.sessions[0]).toEqual(index.session(PROJECT_A, '2'));
  });

  it('serves a repeated search from the cache until the project changes', () => {
    const index = new SessionIndex();
    addSession(index, PROJECT_A, '1', { userID: 'a' });
    const search = jest.spyOn(index, 'search');
    const responses = new SearchResponses(index, new SessionJson(10), 10);
    const query = q({ filters: [{ type: 'USERID', value: ['a'] }] });
    const first = responses.body(PROJECT_A, query);
    // Same query, filters in another spelling: same cache entry.
    expect(responses.body(PROJECT_A, q({ filters: [{ type: 'userid', value: 'A', operator: 'contains' }] }))).toBe(first);
    expect(search).toHaveBeenCalledTimes(1);

    // Another project's change does not invalidate it.
    addSession(index, PROJECT_B, '9', { userID: 'a' });
    responses.body(PROJECT_A, query);
    expect(search).toHaveBeenCalledTimes(1);

    addSession(index, PROJECT_A, '1', { userID: 'z' });
    const after = responses.body(PROJECT_A, query);
    expect(search).toHaveBeenCalledTimes(2);
    expect(JSON.parse(after.json.toString())).toEqual({ data: { total: 0, sessions: [] } });
  });

  it('keys entries by page and limit', () => {
    const index = new SessionIndex();
    for (const id of ['1', '2', '3']) addSession(index, PROJECT_A, id, { timestamp: Number(id) });
    const responses = new SearchResponses(index, new SessionJson(10), 10);
    const ids = (body: EncodedBody) => (JSON.parse(body.json.toString()) as { data: { sessions: Array<{ sessionID: string }> } }).data.sessions.map((s) => s.sessionID);
    expect(ids(responses.body(PROJECT_A, q({ limit: 1, page: 1 })))).toEqual(['3']);
    expect(ids(responses.body(PROJECT_A, q({ limit: 1, page: 2 })))).toEqual(['2']);
    expect(ids(responses.body(PROJECT_A, q({ limit: 2, page: 1 })))).toEqual(['3', '2']);
  });

  it('compresses a page once, on first demand, and keeps it with the cached page', () => {
    const index = new SessionIndex();
    for (let i = 1; i <= 20; i++) addSession(index, PROJECT_A, String(i), { userID: `user${i}@example.com`, timestamp: i });
    const responses = new SearchResponses(index, new SessionJson(10), 10);
    const body = responses.body(PROJECT_A, q({}));
    const gzipped = body.gzipped();
    expect(gunzipSync(gzipped).equals(body.json)).toBe(true);
    expect(gzipped.byteLength).toBeLessThan(body.json.byteLength / 3);
    expect(responses.body(PROJECT_A, q({})).gzipped()).toBe(gzipped);
  });

  it('does not cache when its size is 0', () => {
    const index = new SessionIndex();
    addSession(index, PROJECT_A, '1');
    const search = jest.spyOn(index, 'search');
    const responses = new SearchResponses(index, new SessionJson(10), 0);
    responses.body(PROJECT_A, q({}));
    responses.body(PROJECT_A, q({}));
    expect(search).toHaveBeenCalledTimes(2);
  });

  it('is right for a project that emptied and came back', () => {
    const index = new SessionIndex();
    const responses = new SearchResponses(index, new SessionJson(10), 10);
    expect(JSON.parse(responses.body(PROJECT_A, q({})).json.toString()).data.total).toBe(0);
    addSession(index, PROJECT_A, '1');
    expect(JSON.parse(responses.body(PROJECT_A, q({})).json.toString()).data.total).toBe(1);
    index.apply({ type: 'tab:down', projectKey: PROJECT_A, sessionId: '1', tabId: 't1', socketId: 's-1' });
    expect(JSON.parse(responses.body(PROJECT_A, q({})).json.toString()).data.total).toBe(0);
    addSession(index, PROJECT_A, '2');
    expect(JSON.parse(responses.body(PROJECT_A, q({})).json.toString()).data.sessions[0].sessionID).toBe('2');
  });
});

describe('toHubError', () => {
  it('keeps HubErrors', () => {
    const e = new HubError(ErrorCode.FORBIDDEN, 'no');
    expect(toHubError(e)).toBe(e);
  });

  it('keeps the status and safe message of Express errors', () => {
    expect(toHubError({ status: 415, expose: true, message: 'unsupported charset "LATIN1"' })).toMatchObject({
      code: 'BAD_REQUEST',
      status: 415,
      message: 'unsupported charset "LATIN1"',
    });
  });

  it('hides messages not marked safe, and treats everything else as a bug', () => {
    expect(toHubError({ status: 400, message: 'internal path /x/y' })?.message).toBe('malformed request');
    expect(toHubError(new Error('boom'))).toBeUndefined();
    expect(toHubError({ status: 500, expose: false })).toBeUndefined();
    expect(toHubError('string')).toBeUndefined();
  });
});

describe('acceptsGzip', () => {
  it('reads Accept-Encoding as clients send it', () => {
    for (const yes of ['gzip', 'gzip, deflate, br', 'br;q=1.0, GZIP;q=0.5', '*', 'deflate, *;q=0.1', 'gzip;q=1']) expect([yes, acceptsGzip(yes)]).toEqual([yes, true]);
    for (const no of [undefined, '', 'identity', 'deflate, br', 'gzip;q=0', '*, gzip;q=0', '*;q=0', 'x-gzip2']) expect([no, acceptsGzip(no)]).toEqual([no, false]);
  });
});

describe('matchSessionRoute', () => {
  it('names the route and its raw segments, with the query string apart', () => {
    expect(matchSessionRoute('GET', '/api/v1/p1/assist/sessions?limit=5&userId=a%20b')).toEqual({ route: 'sessions', projectKey: 'p1', sessionId: undefined, search: 'limit=5&userId=a%20b' });
    expect(matchSessionRoute('POST', '/api/v1/p1/assist/sessions')).toEqual({ route: 'sessions', projectKey: 'p1', sessionId: undefined, search: '' });
    expect(matchSessionRoute('GET', '/api/v1/p1/assist/sessions/s%201')).toMatchObject({ route: 'session', sessionId: 's%201' });
    expect(matchSessionRoute('HEAD', '/api/v1/p1/assist/autocomplete?type=USERID')).toMatchObject({ route: 'autocomplete', search: 'type=USERID' });
  });

  it('allows a trailing slash and any case in the fixed segments, as Express routing did', () => {
    expect(matchSessionRoute('GET', '/api/v1/p1/assist/sessions/')).toMatchObject({ route: 'sessions' });
    expect(matchSessionRoute('GET', '/API/V1/MyProject/Assist/Sessions')).toMatchObject({ route: 'sessions', projectKey: 'MyProject' });
  });

  it('matches the path whatever the method (the route answers 405 to a method it does not take)', () => {
    expect(matchSessionRoute('DELETE', '/api/v1/p1/assist/sessions')).toMatchObject({ route: 'sessions' });
    expect(matchSessionRoute('POST', '/api/v1/p1/assist/sessions/s1')).toMatchObject({ route: 'session' });
  });

  it('leaves other paths to the rest of the app (404 there)', () => {
    for (const [method, url] of [
      ['GET', '/api/v1//assist/sessions'],
      ['GET', '/api/v1/p1/assist/sessions/s1/more'],
      ['GET', '/api/v2/p1/assist/sessions'],
      ['GET', '/health'],
      ['GET', undefined],
    ] as const) {
      expect(matchSessionRoute(method, url)).toBeUndefined();
    }
  });
});
