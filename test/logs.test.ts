/**
 * Logs an operator can use: level labels and ISO times; at info, rate-limited summaries of refused
 * handshakes and 401/403/429; at debug, each refusal with what identifies the client (peerId,
 * message, address) and never a secret.
 */
import { Writable } from 'node:stream';
import { io } from 'socket.io-client';
import { loadConfig } from '../src/config';
import { createLogger } from '../src/ops/logger';
import { type Hub, startHub } from '../src/server';
import { API_KEYS_SPEC, KEY_A, PROJECT_A, PROJECT_B, call, sessionsPath } from './support/http';
import { eventually } from './support/wait';

type Line = Record<string, unknown>;

function capture(level: string): { lines: Line[]; logger: ReturnType<typeof createLogger> } {
  const lines: Line[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const text of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(text) as Line);
      done();
    },
  });
  return { lines, logger: createLogger(level, 'hub', stream) };
}

it('writes level labels and ISO 8601 times', () => {
  const { lines, logger } = capture('info');
  logger.info({ a: 1 }, 'hello');
  logger.debug('not at info');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatchObject({ level: 'info', msg: 'hello', a: 1, name: 'hub' });
  expect(String(lines[0]?.time)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
});

describe('refusals', () => {
  let hub: Hub;
  let lines: Line[];
  const WRONG_KEY = 'wrong-key-that-is-secret-42';
  const AGENT_TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJzZWNyZXQiOjF9.c2VjcmV0LXNpZ25hdHVyZQ';

  beforeAll(async () => {
    const captured = capture('debug');
    lines = captured.lines;
    const config = loadConfig({ LISTEN_HOST: '127.0.0.1', LISTEN_PORT: '0', HUB_API_KEYS: API_KEYS_SPEC, ASSIST_JWT_SECRET: 'test-jwt-secret-0001', LOG_SUMMARY_INTERVAL_MS: '200', REST_RATE_LIMIT: '1' });
    hub = await startHub(config, { logger: captured.logger });
  });

  afterAll(() => hub.shutdown());

  it('logs each at debug with peerId, message and address, and a summary per window at info; no secret anywhere', async () => {
    const refused = (query: Record<string, string>, auth: Record<string, string> = {}): Promise<void> =>
      new Promise((resolve) => {
        const socket = io(hub.url, { path: '/ws-assist/socket', transports: ['websocket'], reconnection: false, forceNew: true, query, auth });
        socket.once('connect_error', () => {
          socket.close();
          resolve();
        });
      });
    await refused({ identity: 'session', peerId: 'not-a-valid-peer-id-at-all' });
    await refused({ identity: 'agent', peerId: `${PROJECT_A}-123` }, { token: AGENT_TOKEN });
    expect((await call(hub.url, sessionsPath(PROJECT_A), { key: WRONG_KEY })).status).toBe(401);
    expect((await call(hub.url, sessionsPath(PROJECT_B), { key: KEY_A })).status).toBe(403);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await call(hub.url, sessionsPath(PROJECT_A), { key: KEY_A })).status);
    expect(statuses).toContain(429);

    await eventually(() => lines.some((l) => l.msg?.toString().startsWith('refused handshakes and requests')), () => JSON.stringify(lines.slice(-5)));
    const debug = lines.filter((l) => l.msg === 'handshake refused');
    expect(debug[0]).toMatchObject({ level: 'debug', reason: 'peer_id', peerId: 'not-a-valid-peer-id-at-all', identity: 'session', message: expect.stringContaining('peerId') });
    expect(String(debug[0]?.address)).toMatch(/127\.0\.0\.1/);
    expect(debug[1]).toMatchObject({ reason: 'authentication', peerId: `${PROJECT_A}-123`, identity: 'agent' });
    const rest = lines.filter((l) => l.status === 401);
    expect(rest[0]).toMatchObject({ level: 'debug', code: 'UNAUTHORIZED', route: '/api/v1/:projectKey/assist/sessions' });
    expect(String(rest[0]?.address)).toMatch(/127\.0\.0\.1/);

    // The summaries of the windows add up to what was refused.
    const summaries = (): Line[] => lines.filter((l) => l.msg?.toString().startsWith('refused handshakes and requests'));
    const total = (kind: 'handshakes' | 'http', key: string): number =>
      summaries().reduce((sum, l) => sum + ((l.refused as Record<string, Record<string, number>>)[kind]?.[key] ?? 0), 0);
    await eventually(() => total('http', '429') >= 1, () => JSON.stringify(summaries()));
    expect(summaries().every((l) => l.level === 'info' && l.windowSeconds === 0.2)).toBe(true);
    expect(total('handshakes', 'peer_id')).toBe(1);
    expect(total('handshakes', 'authentication')).toBe(1);
    expect(total('http', '401')).toBe(1);
    expect(total('http', '403')).toBe(1);

    const all = JSON.stringify(lines);
    expect(all).not.toContain(WRONG_KEY);
    expect(all).not.toContain(KEY_A);
    expect(all).not.toContain(AGENT_TOKEN);
  });
});
