/**
 * The bench's lean clients (load/lib/leanSocket.ts, load/lib/leanHttp.ts) against socket.io-client
 * and node:http: the hub must see the same bytes and end up with the same state, or the bench's
 * figures would measure something else than before.
 */
import http from 'node:http';
import net from 'node:net';
import { gzipSync } from 'node:zlib';
import { httpRequest } from '../load/lib/http';
import { LeanHttpConnection, buildRequest, decodeBody } from '../load/lib/leanHttp';
import { openLeanSocket, type LeanSocket } from '../load/lib/leanSocket';
import { newRunTag, sessionCountForTabs, tabIdentity, type PopulationConfig } from '../load/lib/population';
import { RestLoad, SEARCH_BODY } from '../load/lib/rest';
import type { HubConnection } from '../load/lib/sockets';
import { ErrorCounts } from '../load/lib/stats';
import { TrackerFleet, type Generator } from '../load/lib/trackers';
import type { Hub } from '../src/server';
import { API_KEY, JWT_SECRET, startTestHub } from './support/hub';
import { eventually, pause } from './support/wait';

const WS_PATH = '/ws-assist/socket';
const TABS = 24;

function population(): PopulationConfig {
  return { projectCount: 2, runTag: newRunTag(Date.now()), startedAtMs: Date.now() };
}

function connection(url: string, pop: PopulationConfig): HubConnection {
  return { url, socketPath: WS_PATH, apiKey: API_KEY, jwtSecret: JWT_SECRET, population: pop };
}

/** A TCP server that records the first request head of every connection and never answers. */
async function captureServer(): Promise<{ url: string; heads: string[]; close(): Promise<void> }> {
  const heads: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    let received = '';
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (received.includes('\r\n\r\n') && !received.startsWith('\0')) {
        heads.push(received);
        received = '\0';
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    heads,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

const withoutKey = (head: string): string => head.replace(/Sec-WebSocket-Key: [^\r]+/, 'Sec-WebSocket-Key: (random)');

describe('the bench generator: what the hub receives', () => {
  it('a lean tab sends the upgrade request of a socket.io-client tab, header for header', async () => {
    const capture = await captureServer();
    try {
      const pop = population();
      const heads = async (generator: Generator): Promise<string[]> => {
        capture.heads.length = 0;
        const fleet = new TrackerFleet(connection(capture.url, pop), new ErrorCounts(), generator);
        await fleet.connect({ fromTab: 0, toTab: 3, stride: 1, offset: 0, concurrency: 3, startBatch: 0, connectTimeoutMs: 300, deadlineMs: 5000 });
        return capture.heads.map(withoutKey).sort();
      };
      const socketIo = await heads('socketio');
      const lean = await heads('lean');
      expect(socketIo).toHaveLength(3);
      expect(lean).toEqual(socketIo);
      expect(lean[0]).toContain('sessionInfo=');
    } finally {
      await capture.close();
    }
  });

  it('a lean REST request is the bytes node:http sends for the same call', async () => {
    const capture = await captureServer();
    const agent = new http.Agent({ keepAlive: true });
    try {
      const path = '/api/v1/abc/assist/sessions';
      const body = JSON.stringify(SEARCH_BODY);
      const headers = { authorization: API_KEY, 'accept-encoding': 'gzip' };
      void httpRequest({ method: 'POST', url: `${capture.url}${path}`, headers, body, agent, timeoutMs: 300 }).catch(() => undefined);
      const lean = new LeanHttpConnection(capture.url, 300);
      void lean.request(buildRequest(capture.url, 'POST', path, headers, body)).catch(() => undefined);
      await eventually(() => capture.heads.length === 2);
      expect(capture.heads[1]).toBe(capture.heads[0]);
      lean.close();
    } finally {
      agent.destroy();
      await capture.close();
    }
  });
});

describe('the lean REST client reads every framing', () => {
  it('Content-Length, chunked (split anywhere) and gzip bodies, and Connection: close', async () => {
    const text = JSON.stringify({ data: { sessions: Array.from({ length: 300 }, (_, i) => ({ sessionID: String(i) })) } });
    const server = http.createServer((req, res) => {
      if (req.url === '/chunked') {
        // Three writes, each a chunk of its own: the parser must join them.
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write(text.slice(0, 7));
        setTimeout(() => {
          res.write(text.slice(7, 5000));
          res.end(text.slice(5000));
        }, 5);
      } else if (req.url === '/gzip') {
        const body = gzipSync(text);
        res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': body.length });
        res.end(body);
      } else if (req.url === '/close') {
        res.writeHead(404, { connection: 'close', 'content-length': 2 });
        res.end('{}');
      } else {
        res.end(text);
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    const lean = new LeanHttpConnection(url, 5000);
    try {
      for (const path of ['/plain', '/chunked', '/gzip', '/chunked', '/close', '/plain']) {
        const response = await lean.request(buildRequest(url, 'GET', path, {}));
        expect(response.status).toBe(path === '/close' ? 404 : 200);
        expect(decodeBody(response)).toBe(path === '/close' ? '{}' : text);
      }
    } finally {
      lean.close();
      server.close();
    }
  });
});

describe('the bench generator against a real hub', () => {
  let hub: Hub;
  beforeAll(async () => {
    hub = await startTestHub();
  });
  afterAll(async () => {
    await hub.shutdown();
  });

  /** Every session of the population's projects, as REST lists them (sorted by id). */
  async function sessionsOf(pop: PopulationConfig): Promise<unknown[]> {
    const all: unknown[] = [];
    for (let project = 0; project < pop.projectCount; project++) {
      const { projectKey } = tabIdentity(project, pop);
      const res = await fetch(`${hub.url}/api/v1/${projectKey}/assist/sessions?limit=200`, { headers: { authorization: API_KEY } });
      const json = (await res.json()) as { data: { sessions: Array<{ sessionID: string }> } };
      all.push(...json.data.sessions);
    }
    return all.sort((a, b) => String((a as { sessionID: string }).sessionID).localeCompare(String((b as { sessionID: string }).sessionID)));
  }

  const liveSessions = (): number => hub.ctx.index.size;

  it('lean tabs leave the hub with the same sessions as socket.io-client tabs', async () => {
    const pop = population();
    const snapshot = async (generator: Generator): Promise<unknown[]> => {
      const errors = new ErrorCounts();
      const fleet = new TrackerFleet(connection(hub.url, pop), errors, generator);
      const result = await fleet.connect({ fromTab: 0, toTab: TABS, stride: 1, offset: 0, concurrency: 8, startBatch: 3, connectTimeoutMs: 5000, deadlineMs: 10_000 });
      expect(result.connected).toBe(TABS);
      await eventually(() => liveSessions() === sessionCountForTabs(TABS));
      const sessions = await sessionsOf(pop);
      fleet.close();
      await eventually(() => liveSessions() === 0);
      expect(errors.toJson()).toEqual({});
      return sessions;
    };
    const socketIo = await snapshot('socketio');
    const lean = await snapshot('lean');
    expect(socketIo).toHaveLength(sessionCountForTabs(TABS));
    expect(lean).toEqual(socketIo);
  });

  it('lean tabs answer the hub’s pings: they outlive several ping timeouts', async () => {
    const engineOptions = hub.io.engine.opts;
    const saved = { pingInterval: engineOptions.pingInterval, pingTimeout: engineOptions.pingTimeout };
    engineOptions.pingInterval = 100;
    engineOptions.pingTimeout = 100;
    const errors = new ErrorCounts();
    const fleet = new TrackerFleet(connection(hub.url, population()), errors, 'lean');
    try {
      await fleet.connect({ fromTab: 0, toTab: TABS, stride: 1, offset: 0, concurrency: 8, startBatch: 3, connectTimeoutMs: 5000, deadlineMs: 10_000 });
      await eventually(() => liveSessions() === sessionCountForTabs(TABS));
      // Ten ping intervals: a tab that did not answer would be closed after 200 ms.
      await pause(1000);
      expect(liveSessions()).toBe(sessionCountForTabs(TABS));
      expect(fleet.liveCount).toBe(TABS);
      expect(errors.toJson()).toEqual({});
    } finally {
      fleet.close();
      Object.assign(engineOptions, saved);
      await eventually(() => liveSessions() === 0);
    }
  });

  it('an event a lean tab emits reaches the hub', async () => {
    const pop = population();
    const tab = tabIdentity(0, pop);
    let socket: LeanSocket | undefined;
    try {
      socket = await openLeanSocket({
        url: hub.url,
        path: WS_PATH,
        query: { peerId: tab.peerId, identity: 'session', tabId: tab.tabId, sessionInfo: JSON.stringify({ pageTitle: 'before', metadata: { plan: 'free' } }) },
        headers: { 'user-agent': 'lean-test' },
        timeoutMs: 5000,
      });
      socket.emit('UPDATE_SESSION', { meta: { tabId: tab.tabId }, data: { pageTitle: 'after', metadata: { lastChange: '42' } } });
      const url = `${hub.url}/api/v1/${tab.projectKey}/assist/sessions/${tab.sessionId}`;
      await eventually(async () => {
        const res = await fetch(url, { headers: { authorization: API_KEY } });
        const json = (await res.json()) as { data?: { pageTitle?: string; metadata?: Record<string, string> } };
        return json.data?.pageTitle === 'after' && json.data.metadata?.lastChange === '42';
      });
    } finally {
      socket?.disconnect();
    }
  });

  it('the lean REST client gets the answers node:http gets, gzip or not', async () => {
    const pop = population();
    const fleet = new TrackerFleet(connection(hub.url, pop), new ErrorCounts(), 'lean');
    try {
      await fleet.connect({ fromTab: 0, toTab: TABS, stride: 1, offset: 0, concurrency: 8, startBatch: 3, connectTimeoutMs: 5000, deadlineMs: 10_000 });
      const tab = tabIdentity(3, pop);
      const calls: Array<{ method: 'GET' | 'POST'; path: string; body?: string }> = [
        { method: 'GET', path: `/api/v1/${tab.projectKey}/assist/sessions` },
        { method: 'POST', path: `/api/v1/${tab.projectKey}/assist/sessions`, body: JSON.stringify(SEARCH_BODY) },
        { method: 'GET', path: `/api/v1/${tab.projectKey}/assist/sessions/${tab.sessionId}` },
        { method: 'GET', path: `/api/v1/${tab.projectKey}/assist/sessions/0000` },
      ];
      const lean = new LeanHttpConnection(hub.url, 5000);
      const agent = new http.Agent({ keepAlive: true });
      try {
        for (const gzip of [false, true]) {
          const headers: Record<string, string> = { authorization: API_KEY };
          if (gzip) headers['accept-encoding'] = 'gzip';
          for (const call of calls) {
            const viaNode = await httpRequest({ ...call, url: `${hub.url}${call.path}`, headers, agent, timeoutMs: 5000, acceptGzip: gzip });
            // Twice on the same connection: keep-alive framing must leave nothing behind.
            for (let i = 0; i < 2; i++) {
              const viaLean = await lean.request(buildRequest(hub.url, call.method, call.path, headers, call.body));
              expect(viaLean.status).toBe(viaNode.status);
              expect(JSON.parse(decodeBody(viaLean))).toEqual(JSON.parse(viaNode.body));
            }
          }
        }
      } finally {
        lean.close();
        agent.destroy();
      }

      // The load itself: every answer checked (status) and the sampled bodies validated, no errors.
      const errors = new ErrorCounts();
      const rest = new RestLoad(connection(hub.url, pop), errors, 'lean');
      for (const operation of ['list', 'search', 'one'] as const) {
        for (const gzip of [false, true]) {
          const result = await rest.run({ operation, concurrency: 2, durationMs: 200, liveTabs: TABS, requestTimeoutMs: 5000, gzip, searchLimit: 50 });
          expect(result.ok).toBeGreaterThan(20);
          expect(result.failed).toBe(0);
        }
      }
      expect(errors.toJson()).toEqual({});
    } finally {
      fleet.close();
      await eventually(() => liveSessions() === 0);
    }
  });
});
