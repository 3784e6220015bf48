/**
 * CORS on the public REST API, per CORS_ORIGIN: preflights answered before any guard, the allowed
 * origin on answers (errors included), nothing for an origin not listed. Over node:http, which sends
 * the Origin header as given.
 */
import { type IncomingHttpHeaders, request } from 'node:http';
import { KEY_ALL, PROJECT_A, type TestApp, addSession, sessionsPath, startTestApp } from './support/http';

interface RawReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

function send(url: string, method: string, headers: Record<string, string>, body?: string): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const preflight = (app: TestApp, path: string, origin: string, method = 'POST'): Promise<RawReply> =>
  send(`${app.url}${path}`, 'OPTIONS', { origin, 'access-control-request-method': method, 'access-control-request-headers': 'authorization,content-type' });

describe('CORS_ORIGIN=* (the default)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
    addSession(app.index, PROJECT_A, '1');
  });
  afterAll(() => app.close());

  it('answers a preflight 204 with the route’s methods, Authorization allowed, no API key needed', async () => {
    const reply = await preflight(app, sessionsPath(PROJECT_A), 'https://dashboard.example');
    expect(reply.status).toBe(204);
    expect(reply.headers['access-control-allow-origin']).toBe('*');
    expect(reply.headers['access-control-allow-methods']).toBe('GET,HEAD,POST');
    expect(reply.headers['access-control-allow-headers']).toBe('Authorization,Content-Type');
    expect(reply.headers['access-control-max-age']).toBe('600');
    const one = await preflight(app, sessionsPath(PROJECT_A, '/1'), 'https://dashboard.example', 'GET');
    expect(one.headers['access-control-allow-methods']).toBe('GET,HEAD');
  });

  it('sends Access-Control-Allow-Origin on answers and on errors, and exposes Retry-After and X-Hub-Partial', async () => {
    const ok = await send(`${app.url}${sessionsPath(PROJECT_A)}`, 'POST', { origin: 'https://dashboard.example', authorization: KEY_ALL, 'content-type': 'application/json' }, '{}');
    expect(ok.status).toBe(200);
    expect(ok.headers['access-control-allow-origin']).toBe('*');
    expect(ok.headers['access-control-expose-headers']).toBe('Retry-After,X-Hub-Partial');
    expect(JSON.parse(ok.body).data.total).toBe(1);
    const unauthorized = await send(`${app.url}${sessionsPath(PROJECT_A)}`, 'GET', { origin: 'https://dashboard.example' });
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers['access-control-allow-origin']).toBe('*');
  });

  it('adds nothing to a request without an Origin (curl, servers)', async () => {
    const reply = await send(`${app.url}${sessionsPath(PROJECT_A)}`, 'GET', { authorization: KEY_ALL });
    expect(reply.status).toBe(200);
    expect(reply.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('CORS_ORIGIN as a list', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ CORS_ORIGIN: 'https://a.example, https://b.example' });
  });
  afterAll(() => app.close());

  it('echoes a listed origin, with Vary: Origin', async () => {
    const pre = await preflight(app, sessionsPath(PROJECT_A), 'https://b.example');
    expect(pre.status).toBe(204);
    expect(pre.headers['access-control-allow-origin']).toBe('https://b.example');
    expect(pre.headers.vary).toMatch(/Origin/);
    const get = await send(`${app.url}${sessionsPath(PROJECT_A)}`, 'GET', { origin: 'https://a.example', authorization: KEY_ALL });
    expect(get.status).toBe(200);
    expect(get.headers['access-control-allow-origin']).toBe('https://a.example');
  });

  it('gives an origin not listed no Access-Control-Allow-Origin (the browser then refuses the answer)', async () => {
    const pre = await preflight(app, sessionsPath(PROJECT_A), 'https://evil.example');
    expect(pre.headers['access-control-allow-origin']).toBeUndefined();
    const get = await send(`${app.url}${sessionsPath(PROJECT_A)}`, 'GET', { origin: 'https://evil.example', authorization: KEY_ALL });
    expect(get.headers['access-control-allow-origin']).toBeUndefined();
  });
});
