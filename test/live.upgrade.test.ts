/**
 * WebSocket upgrades skip engine.io's CORS middleware (src/live/upgradeMiddlewares.ts), against the
 * real hub: the 101 answer carries no CORS headers, tabs still connect, long-polling still gets
 * CORS, and a middleware added later runs on upgrades again.
 */
import { connect as tcpConnect, type Socket as TcpSocket } from 'node:net';
import { type IncomingHttpHeaders, request } from 'node:http';
import type { Hub } from '../src/server';
import { projectKey, startTestHub } from './support/hub';
import { connectTracker } from './support/live';

const WS_PATH = '/ws-assist/socket/';
const ORIGIN = 'https://shop.example';

/** Sends an engine.io WebSocket upgrade with a browser's Origin over raw TCP; resolves with the answer's head. */
function upgradeHead(hub: Hub): Promise<string> {
  const { hostname, port } = new URL(hub.url);
  return new Promise((resolve, reject) => {
    const socket: TcpSocket = tcpConnect(Number(port), hostname, () => {
      socket.write(
        `GET ${WS_PATH}?EIO=4&transport=websocket HTTP/1.1\r\nHost: localhost\r\nOrigin: ${ORIGIN}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
      );
    });
    let received = '';
    const done = (): void => {
      socket.destroy();
      resolve(received.split('\r\n\r\n')[0] as string);
    };
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
      if (received.includes('\r\n\r\n')) done();
    });
    socket.on('close', done);
    socket.on('error', reject);
  });
}

function pollingHandshake(hub: Hub): Promise<{ status: number; headers: IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = request(`${hub.url}${WS_PATH}?EIO=4&transport=polling`, { headers: { origin: ORIGIN } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('WebSocket upgrades without the CORS middleware', () => {
  let hub: Hub;
  beforeAll(async () => {
    hub = await startTestHub();
  });
  afterAll(() => hub.shutdown());

  test('the 101 answer carries no CORS headers, and a tab connects as before', async () => {
    const head = await upgradeHead(hub);
    expect(head).toMatch(/^HTTP\/1\.1 101 /);
    expect(head.toLowerCase()).not.toContain('access-control-');
    const tab = await connectTracker(hub, { projectKey: projectKey('upgradecors'), sessionId: '1', tabId: 't1' });
    expect(tab.socket.connected).toBe(true);
    expect(hub.ctx.index.projectSize(projectKey('upgradecors'))).toBe(1);
    tab.socket.disconnect();
  });

  test('long-polling still answers with CORS for the origin', async () => {
    const reply = await pollingHandshake(hub);
    expect(reply.status).toBe(200);
    expect(reply.headers['access-control-allow-origin']).toBe(ORIGIN);
    expect(reply.headers['access-control-allow-credentials']).toBe('true');
  });

  test('a middleware added later runs on upgrades: only the CORS middleware is ever skipped', async () => {
    const other = await startTestHub();
    try {
      let seen = 0;
      other.io.engine.use((_req: unknown, _res: unknown, next: (error?: Error) => void) => {
        seen++;
        next(new Error('refused by a later middleware'));
      });
      const head = await upgradeHead(other);
      expect(head).toMatch(/^HTTP\/1\.1 400 /);
      expect(seen).toBe(1);
    } finally {
      await other.shutdown();
    }
  });
});
