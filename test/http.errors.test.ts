/**
 * Every REST failure is `{"error": {"code", "message"}}` with the fitting status, never a 500 for bad
 * input. Against a whole hub, except where the failure needs a setting of its own (rate limit).
 */
import { type IncomingHttpHeaders, request } from 'node:http';
import type { Hub } from '../src/server';
import { startTestHub } from './support/hub';
import { API_KEYS_SPEC, KEY_A, KEY_ALL, PROJECT_A, PROJECT_B, type Reply, call, errorOf, page, sessionsPath, startTestApp } from './support/http';
import { connectTracker } from './support/live';
import { pause } from './support/wait';

let hub: Hub;

beforeAll(async () => {
  hub = await startTestHub({ HUB_API_KEYS: API_KEYS_SPEC, REST_BODY_LIMIT: '2048' });
});

afterAll(async () => {
  await hub.shutdown();
});

/** A POST whose body is sent in chunks (no Content-Length), for what fetch cannot send. */
function rawRequest(baseUrl: string, path: string, chunks: string[]): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${baseUrl}${path}`, { method: 'POST', headers: { authorization: KEY_ALL, 'content-type': 'application/json' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    // The hub may answer and close before the last chunk is written: that is the point.
    req.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' || error.code === 'EPIPE' ? undefined : reject(error)));
    for (const chunk of chunks) req.write(chunk);
    req.end();
  });
}

function expectError(reply: Reply, status: number, code: string): { code: string; message: string } {
  expect({ status: reply.status, code: errorOf(reply).code }).toEqual({ status, code });
  expect(reply.headers.get('content-type')).toMatch(/^application\/json/);
  expect(reply.text).not.toMatch(/\bat .+:\d+:\d+/); // no stack trace
  return errorOf(reply);
}

describe('authentication and authorization', () => {
  it('401 without an Authorization header', async () => {
    const e = expectError(await call(hub.url, sessionsPath(PROJECT_A), { key: null }), 401, 'UNAUTHORIZED');
    expect(e.message).toMatch(/missing/i);
  });

  it('401 for a wrong key, on every route', async () => {
    expectError(await call(hub.url, sessionsPath(PROJECT_A), { key: 'not-a-configured-key' }), 401, 'UNAUTHORIZED');
    expectError(await call(hub.url, sessionsPath(PROJECT_A), { key: 'not-a-configured-key', body: {} }), 401, 'UNAUTHORIZED');
    expectError(await call(hub.url, sessionsPath(PROJECT_A, '/1'), { key: 'not-a-configured-key' }), 401, 'UNAUTHORIZED');
    expectError(await call(hub.url, `/api/v1/${PROJECT_A}/assist/autocomplete?type=USERID`, { key: 'nope-nope-nope' }), 401, 'UNAUTHORIZED');
  });

  it('403 for a key not allowed for the project; the same key works for its own project', async () => {
    expectError(await call(hub.url, sessionsPath(PROJECT_B), { key: KEY_A }), 403, 'FORBIDDEN');
    expectError(await call(hub.url, sessionsPath(PROJECT_B), { key: KEY_A, body: {} }), 403, 'FORBIDDEN');
    expect((await call(hub.url, sessionsPath(PROJECT_A), { key: KEY_A })).status).toBe(200);
    expect((await call(hub.url, sessionsPath(PROJECT_A), { key: `Bearer ${KEY_A}` })).status).toBe(200);
  });

  it('checks the key before reading the body: an unauthenticated bad body is a 401, not a 400', async () => {
    expectError(await call(hub.url, sessionsPath(PROJECT_A), { key: null, body: '{not json' }), 401, 'UNAUTHORIZED');
  });

  it('400 for a malformed project key', async () => {
    const e = expectError(await call(hub.url, sessionsPath('bad.key!')), 400, 'BAD_REQUEST');
    expect(e.message).toMatch(/^projectKey:/);
    expectError(await call(hub.url, sessionsPath('k'.repeat(257))), 400, 'BAD_REQUEST');
  });

  it('400 for a project key of another length than PROJECT_KEY_LENGTH (trackers are held to it too), before the key check', async () => {
    for (const key of ['short', `${PROJECT_A}x`]) {
      const e = expectError(await call(hub.url, sessionsPath(key), { key: null }), 400, 'BAD_REQUEST');
      expect(e.message).toBe(`projectKey: must be 20 characters (PROJECT_KEY_LENGTH), not ${key.length}`);
    }
    const any = await startTestApp({ PROJECT_KEY_LENGTH: '0' });
    try {
      expect((await call(any.url, sessionsPath('short'))).status).toBe(200);
    } finally {
      await any.close();
    }
  });
});

describe('bad input', () => {
  it('400 BAD_REQUEST for a body that is not JSON', async () => {
    const e = expectError(await call(hub.url, sessionsPath(PROJECT_A), { body: '{"filters": [' }), 400, 'BAD_REQUEST');
    expect(e.message).toMatch(/not valid JSON/);
  });

  it('400 BAD_REQUEST for JSON that is not an object', async () => {
    for (const body of ['[1, 2]', '"text"', '42']) {
      const e = expectError(await call(hub.url, sessionsPath(PROJECT_A), { body }), 400, 'BAD_REQUEST');
      expect(e.message).toMatch(/^body:/);
    }
  });

  it('400 INVALID_FILTER naming the field and the reason', async () => {
    const unknownType = expectError(await call(hub.url, sessionsPath(PROJECT_A), { body: { filters: [{ type: 'NOPE', value: ['x'] }] } }), 400, 'INVALID_FILTER');
    expect(unknownType.message).toMatch(/^filters\.0\.type: unknown filter type/);

    const noSource = expectError(
      await call(hub.url, sessionsPath(PROJECT_A), { body: { filters: [{ type: 'USERID', value: 'a' }, { type: 'METADATA', value: ['x'] }] } }),
      400,
      'INVALID_FILTER',
    );
    expect(noSource.message).toMatch(/^filters\.1\.source:/);

    const badOperator = expectError(await call(hub.url, sessionsPath(PROJECT_A), { body: { filters: [{ type: 'USERID', value: 'a', operator: 'IS' }] } }), 400, 'INVALID_FILTER');
    expect(badOperator.message).toMatch(/^filters\.0\.operator:/);

    expectError(await call(hub.url, sessionsPath(PROJECT_A), { body: { filters: 'USERID=a' } }), 400, 'INVALID_FILTER');
    expectError(await call(hub.url, sessionsPath(PROJECT_A), { body: { filters: [{ type: 'USERID', value: [42] }] } }), 400, 'INVALID_FILTER');
  });

  it('400 BAD_REQUEST for a bad limit, page, sort or order, naming it', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ limit: 0 }, /^limit:/],
      [{ limit: 201 }, /^limit:/],
      [{ limit: 'ten' }, /^limit:/],
      [{ limit: 1.5 }, /^limit:/],
      [{ page: 0 }, /^page:/],
      [{ sort: 'nope' }, /^sort:/],
      [{ order: 'sideways' }, /^order:/],
    ];
    for (const [body, message] of cases) {
      const e = expectError(await call(hub.url, sessionsPath(PROJECT_A), { body }), 400, 'BAD_REQUEST');
      expect([body, e.message]).toEqual([body, expect.stringMatching(message)]);
    }
  });

  it('400 for bad list query parameters, naming them', async () => {
    expect(expectError(await call(hub.url, `${sessionsPath(PROJECT_A)}?limit=500`), 400, 'BAD_REQUEST').message).toMatch(/^limit:/);
    expect(expectError(await call(hub.url, `${sessionsPath(PROJECT_A)}?page=-1`), 400, 'BAD_REQUEST').message).toMatch(/^page:/);
    expect(expectError(await call(hub.url, `${sessionsPath(PROJECT_A)}?limit=1&limit=2`), 400, 'BAD_REQUEST').message).toMatch(/^limit:/);
    expect(expectError(await call(hub.url, `${sessionsPath(PROJECT_A)}?userId=${'u'.repeat(300)}`), 400, 'INVALID_FILTER').message).toMatch(/^userId/);
  });

  it('413 PAYLOAD_TOO_LARGE past the body limit, whatever the JSON is', async () => {
    const body = JSON.stringify({ filters: [], padding: 'x'.repeat(4096) });
    expectError(await call(hub.url, sessionsPath(PROJECT_A), { body }), 413, 'PAYLOAD_TOO_LARGE');
    // Just under the limit is served (white space pads it: an unknown field would be a 400).
    expect((await call(hub.url, sessionsPath(PROJECT_A), { body: `{"filters": [${' '.repeat(1900)}]}` })).status).toBe(200);
  });

  it('413 for a streamed (chunked) body past the limit, and the connection is closed after the answer', async () => {
    const reply = await rawRequest(hub.url, sessionsPath(PROJECT_A), ['{"filters": [', ' '.repeat(1500), ' '.repeat(1500), ']}']);
    expect(reply.status).toBe(413);
    expect(JSON.parse(reply.body)).toEqual({ error: { code: 'PAYLOAD_TOO_LARGE', message: 'request body exceeds the limit of 2048 bytes' } });
    expect(reply.headers.connection).toBe('close');
  });

  it('an upload cut off halfway leaves the hub serving', async () => {
    await new Promise<void>((resolve, reject) => {
      const req = request(`${hub.url}${sessionsPath(PROJECT_A)}`, {
        method: 'POST',
        headers: { authorization: KEY_ALL, 'content-type': 'application/json', 'content-length': '1000' },
      });
      req.on('error', () => resolve()); // the abort below
      req.write('{"filters": [', () => setTimeout(() => req.destroy(), 50));
      req.on('response', () => reject(new Error('an incomplete upload was answered')));
    });
    const after = await call(hub.url, sessionsPath(PROJECT_A), { body: {} });
    expect(after.status).toBe(200);
  });

  it('415 for a compressed body or a charset other than UTF-8, naming it', async () => {
    const gzip = expectError(await call(hub.url, sessionsPath(PROJECT_A), { body: '{}', headers: { 'content-encoding': 'gzip' } }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    expect(gzip.message).toBe('unsupported content encoding "gzip"');
    const latin1 = expectError(await call(hub.url, sessionsPath(PROJECT_A), { body: '{}', headers: { 'content-type': 'application/json; charset=latin1' } }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    expect(latin1.message).toBe('unsupported charset "LATIN1"');
    // UTF-8 spelled either way is read.
    expect((await call(hub.url, sessionsPath(PROJECT_A), { body: '{}', headers: { 'content-type': 'application/json; charset="UTF-8"' } })).status).toBe(200);
  });

  it('400, not 500, for an undecodable URL parameter', async () => {
    expectError(await call(hub.url, sessionsPath(PROJECT_A, '/%E0%A4%A')), 400, 'BAD_REQUEST');
  });
});

describe('unknown routes and methods', () => {
  it('404 NOT_FOUND as JSON for unknown paths', async () => {
    expectError(await call(hub.url, '/nope'), 404, 'NOT_FOUND');
    expectError(await call(hub.url, `/api/v1/${PROJECT_A}/assist/nope`), 404, 'NOT_FOUND');
    expectError(await call(hub.url, '/debug/gc', { method: 'POST' }), 404, 'NOT_FOUND');
  });

  it('405 METHOD_NOT_ALLOWED with Allow for a method a session route does not answer, before any guard', async () => {
    for (const method of ['PUT', 'DELETE', 'PATCH']) {
      const e = expectError(await call(hub.url, sessionsPath(PROJECT_A), { method, key: null }), 405, 'METHOD_NOT_ALLOWED');
      expect(e.message).toContain(method);
    }
    const list = await call(hub.url, sessionsPath(PROJECT_A), { method: 'DELETE' });
    expect(list.headers.get('allow')).toBe('GET, HEAD, POST, OPTIONS');
    const one = await call(hub.url, sessionsPath(PROJECT_A, '/1'), { method: 'POST', body: {} });
    expectError(one, 405, 'METHOD_NOT_ALLOWED');
    expect(one.headers.get('allow')).toBe('GET, HEAD, OPTIONS');
    expect((await call(hub.url, `/api/v1/${PROJECT_A}/assist/autocomplete`, { method: 'PUT' })).headers.get('allow')).toBe('GET, HEAD, OPTIONS');
  });

  it('OPTIONS without an Origin (not a preflight) is 204 with Allow', async () => {
    const reply = await call(hub.url, sessionsPath(PROJECT_A), { method: 'OPTIONS', key: null });
    expect(reply.status).toBe(204);
    expect(reply.headers.get('allow')).toBe('GET, HEAD, POST, OPTIONS');
  });
});

describe('unknown fields and parameters', () => {
  it('400 naming an unknown body field, with the known one it is close to', async () => {
    // OpenReplay's internal shape: a typo of `filters` that would otherwise answer every session.
    const filter = expectError(await call(hub.url, sessionsPath(PROJECT_A), { body: { filter: { userId: 'x' } } }), 400, 'BAD_REQUEST');
    expect(filter.message).toBe('unknown field "filter" (did you mean "filters"?)');
    const limt = expectError(await call(hub.url, sessionsPath(PROJECT_A), { body: { limt: 1 } }), 400, 'BAD_REQUEST');
    expect(limt.message).toBe('unknown field "limt" (did you mean "limit"?)');
    const far = expectError(await call(hub.url, sessionsPath(PROJECT_A), { body: { colour: 'red' } }), 400, 'BAD_REQUEST');
    expect(far.message).toBe('unknown field "colour"');
  });

  it('400 INVALID_FILTER naming an unknown field of a filter', async () => {
    const e = expectError(await call(hub.url, sessionsPath(PROJECT_A), { body: { filters: [{ type: 'USERID', values: ['a'] }] } }), 400, 'INVALID_FILTER');
    expect(e.message).toBe('filters.0: unknown field "values" (did you mean "value"?)');
  });

  it('400 naming an unknown query parameter of the list, autocomplete and one-session routes', async () => {
    const list = expectError(await call(hub.url, `${sessionsPath(PROJECT_A)}?limt=1`), 400, 'BAD_REQUEST');
    expect(list.message).toBe('unknown query parameter "limt" (did you mean "limit"?)');
    const userid = expectError(await call(hub.url, `${sessionsPath(PROJECT_A)}?userid=a`), 400, 'BAD_REQUEST');
    expect(userid.message).toBe('unknown query parameter "userid" (did you mean "userId"?)');
    const auto = expectError(await call(hub.url, `/api/v1/${PROJECT_A}/assist/autocomplete?type=USERID&query=a`), 400, 'BAD_REQUEST');
    expect(auto.message).toBe('unknown query parameter "query"');
    expectError(await call(hub.url, `${sessionsPath(PROJECT_A, '/1')}?x=1`), 400, 'BAD_REQUEST');
    expect(expectError(await call(hub.url, `${sessionsPath(PROJECT_A)}?__proto__=1`), 400, 'BAD_REQUEST').message).toBe('unknown query parameter "__proto__"');
  });

  it('400 for query parameters on a search (POST): they would be ignored', async () => {
    const e = expectError(await call(hub.url, `${sessionsPath(PROJECT_A)}?limit=1`, { body: {} }), 400, 'BAD_REQUEST');
    expect(e.message).toMatch(/"limit".*JSON body/);
  });

  it('readable messages for bounds, not zod defaults', async () => {
    expect(expectError(await call(hub.url, sessionsPath(PROJECT_A), { body: { limit: 500 } }), 400, 'BAD_REQUEST').message).toBe('limit: must be at most 200');
    expect(expectError(await call(hub.url, sessionsPath(PROJECT_A), { body: { page: 0 } }), 400, 'BAD_REQUEST').message).toBe('page: must be at least 1');
    expect(expectError(await call(hub.url, `${sessionsPath(PROJECT_A)}?limit=500`), 400, 'BAD_REQUEST').message).toBe('limit: must be at most 200');
    const value = expectError(await call(hub.url, sessionsPath(PROJECT_A), { body: { filters: [{ type: 'USERID', value: [42] }] } }), 400, 'INVALID_FILTER');
    expect(value.message).toMatch(/^filters\.0\.value: must be a string or an array of at most 100 strings/);
  });
});

describe('rate limit', () => {
  it('429 RATE_LIMITED with Retry-After past the burst (2x the rate), per API key', async () => {
    const app = await startTestApp({ REST_RATE_LIMIT: '2' });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await call(app.url, sessionsPath(PROJECT_A))).status);
      // Burst of 4, then limited (the refill over a few milliseconds is far below one token).
      expect(statuses).toEqual([200, 200, 200, 200, 429]);
      const limited = await call(app.url, sessionsPath(PROJECT_A), { body: {} });
      expect(errorOf(limited).code).toBe('RATE_LIMITED');
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      // The same key with an auth scheme is the same key, with the same bucket.
      expect((await call(app.url, sessionsPath(PROJECT_A), { key: `Bearer ${KEY_ALL}` })).status).toBe(429);
      // Another key has its own bucket.
      expect((await call(app.url, sessionsPath(PROJECT_A), { key: KEY_A })).status).toBe(200);
      // Refused keys do not spend anyone's tokens.
      expect((await call(app.url, sessionsPath(PROJECT_A), { key: 'wrong-key-123' })).status).toBe(401);
    } finally {
      await app.close();
    }
  });

  it('refills over time: Retry-After later, a request is served again', async () => {
    const app = await startTestApp({ REST_RATE_LIMIT: '1' });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) statuses.push((await call(app.url, sessionsPath(PROJECT_A))).status);
      expect(statuses).toEqual([200, 200, 429]);
      const retryAfter = Number((await call(app.url, sessionsPath(PROJECT_A))).headers.get('retry-after'));
      expect(retryAfter).toBe(1);
      await pause(retryAfter * 1000 + 50);
      expect((await call(app.url, sessionsPath(PROJECT_A))).status).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('is off when REST_RATE_LIMIT=0', async () => {
    const app = await startTestApp({ REST_RATE_LIMIT: '0' });
    try {
      const statuses = new Set<number>();
      for (let i = 0; i < 30; i++) statuses.add((await call(app.url, sessionsPath(PROJECT_A))).status);
      expect([...statuses]).toEqual([200]);
    } finally {
      await app.close();
    }
  });
});

describe('unexpected failures', () => {
  it('500 INTERNAL without details, logged at error level', async () => {
    const app = await startTestApp();
    try {
      const logged: unknown[] = [];
      jest.spyOn(app.ctx.logger, 'error').mockImplementation(((obj: unknown) => {
        logged.push(obj);
      }) as typeof app.ctx.logger.error);
      jest.spyOn(app.index, 'search').mockImplementation(() => {
        throw new Error('secret internal detail');
      });
      const reply = await call(app.url, sessionsPath(PROJECT_A), { body: {} });
      const e = expectError(reply, 500, 'INTERNAL');
      expect(e.message).not.toMatch(/secret internal detail/);
      expect(logged).toHaveLength(1);
      expect(JSON.stringify(logged[0])).toMatch(/secret internal detail/);
      expect(JSON.stringify(logged[0])).toMatch(/\/api\/v1\/:projectKey\/assist\/sessions/);
      expect(JSON.stringify(logged[0])).not.toContain(KEY_ALL);
    } finally {
      jest.restoreAllMocks();
      await app.close();
    }
  });
});

describe('sessions on a hub with trackers keep answering bad input with 4xx', () => {
  it('a bad request does not disturb the next good one', async () => {
    const tracker = (await connectTracker(hub, { minimalInfo: true, projectKey: PROJECT_A, sessionId: '7', tabId: 't', info: { userID: 'x' } })).socket;
    try {
      expect((await call(hub.url, sessionsPath(PROJECT_A), { body: '{' })).status).toBe(400);
      expect(page(await call(hub.url, sessionsPath(PROJECT_A))).total).toBe(1);
    } finally {
      tracker.disconnect();
    }
  });
});
