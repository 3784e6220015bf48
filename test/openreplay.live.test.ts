/**
 * The live side of the OpenReplay drop-in: the agent handshake exactly as the real player sends it
 * (frontend/app/player/web/assist/AssistManager.ts) with a JWT as OpenReplay's backend signs it
 * (api/chalicelib/core/assist.py), the derived session fields UPDATE_SESSION cannot overwrite,
 * `tabId`, and geo from a MaxMind database (a tiny .mmdb written by test/support/mmdb.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jwt from 'jsonwebtoken';
import { io } from 'socket.io-client';
import { ConfigError, loadConfig } from '../src/config';
import { type Hub, startHub } from '../src/server';
import { CHROME_UA, EVENT_TIMEOUT_MS, JWT_SECRET, Peer, WS_PATH, closeAllPeers, connectTracker, projectKey, sessionOf, startLiveHub, waitNoSession, waitSession } from './support/live';
import { scaled } from './support/wait';
import { cityRecord, writeMmdb } from './support/mmdb';

const PK = projectKey('orlive');
const ICE_SERVERS = [{ urls: ['stun:stun.l.google.com:19302', 'stun:stun1.l.google.com:19302'] }];

let seq = 0;
/** A numeric session id that fits a JSON number, as the backend's JWT carries it. */
function numericSessionId(): string {
  seq += 1;
  return `${Date.now()}${String(seq).padStart(2, '0')}`;
}

/** The JWT OpenReplay's backend signs for an agent (`__get_agent_token`). */
function backendToken(claims: { projectKey: string; sessionId: string }, secret = JWT_SECRET): string {
  const iat = Math.floor(Date.now() / 1000);
  return jwt.sign(
    { projectKey: claims.projectKey, projectId: 3, sessionId: Number(claims.sessionId), iat, exp: iat + 3600, iss: 'openreplay-oss', aud: 'openreplay:agent' },
    secret,
    { algorithm: 'HS256' },
  );
}

/** An agent socket with the options the real player passes to io(). `config: undefined` leaves it out. */
function realPlayer(hub: Hub, sessionId: string, o: { config?: string; token?: string; projectKey?: string } = { config: JSON.stringify(ICE_SERVERS) }): Peer {
  const pk = o.projectKey ?? PK;
  const peerId = `${pk}-${sessionId}`;
  const query: Record<string, string | number> = {
    peerId,
    projectId: 3,
    identity: 'agent',
    agentInfo: JSON.stringify({ email: 'agent@acme.io', name: 'Agent Smith', id: 12, peerId, query: '?tab=live' }),
  };
  if (o.config !== undefined) query.config = o.config;
  const socket = io(hub.url, {
    withCredentials: true,
    multiplex: true,
    transports: ['websocket'],
    path: WS_PATH,
    auth: { token: o.token ?? backendToken({ projectKey: pk, sessionId }) },
    extraHeaders: { sessionId },
    query,
    forceNew: true,
    reconnection: false,
    timeout: scaled(EVENT_TIMEOUT_MS),
  });
  return new Peer(socket);
}

describe('OpenReplay live compatibility', () => {
  let hub: Hub;
  beforeAll(async () => {
    hub = await startLiveHub({ GEO_COUNTRY_HEADER: 'x-geo-country' });
  });
  afterEach(closeAllPeers);
  afterAll(async () => {
    await hub.shutdown();
  });

  describe('the real player joins', () => {
    test('with its ICE servers as a JSON array and a backend-signed JWT: tabs get the config exactly as sent', async () => {
      const sid = numericSessionId();
      const tab = await connectTracker(hub, { projectKey: PK, sessionId: sid });
      await waitSession(hub, PK, sid);
      const agent = await realPlayer(hub, sid).connected();
      expect(await tab.next('WEBRTC_CONFIG')).toEqual([JSON.stringify(ICE_SERVERS)]);
      expect(await agent.next('WEBRTC_CONFIG')).toEqual([JSON.stringify(ICE_SERVERS)]);
      const [agentId, info] = await tab.next('NEW_AGENT');
      expect(agentId).toBe(agent.id);
      expect(info).toMatchObject({ name: 'Agent Smith', id: 12, query: '?tab=live' });
      // A tab that connects later gets the same config, then the agents.
      const later = await connectTracker(hub, { projectKey: PK, sessionId: sid, tabId: 'tab2' });
      expect(await later.next('WEBRTC_CONFIG')).toEqual([JSON.stringify(ICE_SERVERS)]);
      expect(await later.next('AGENTS_CONNECTED')).toEqual([[agent.id]]);
    });

    test('with no config: tabs get null, as the reference passes an absent config on', async () => {
      const sid = numericSessionId();
      const tab = await connectTracker(hub, { projectKey: PK, sessionId: sid });
      await waitSession(hub, PK, sid);
      await realPlayer(hub, sid, {}).connected();
      expect(await tab.next('WEBRTC_CONFIG')).toEqual([null]);
      const later = await connectTracker(hub, { projectKey: PK, sessionId: sid, tabId: 'tab2' });
      expect(await later.next('WEBRTC_CONFIG')).toEqual([null]);
    });

    test.each([['{"iceServers":[]}'], ['null'], ['"turn:x"'], ['[]']])('any JSON value as config: %s', async (config) => {
      const sid = numericSessionId();
      const tab = await connectTracker(hub, { projectKey: PK, sessionId: sid });
      await waitSession(hub, PK, sid);
      await realPlayer(hub, sid, { config }).connected();
      expect(await tab.next('WEBRTC_CONFIG')).toEqual([config]);
    });

    test('a config that is not JSON is refused with a clear message', async () => {
      const sid = numericSessionId();
      expect(await realPlayer(hub, sid, { config: '[{"urls":' }).refused()).toMatch(/config is not valid JSON/);
    });

    test('a backend-signed JWT for another session or with another secret is refused', async () => {
      const sid = numericSessionId();
      expect(await realPlayer(hub, sid, { token: backendToken({ projectKey: PK, sessionId: '999' }) }).refused()).toBe('Authorization error');
      expect(await realPlayer(hub, sid, { token: backendToken({ projectKey: PK, sessionId: sid }, 'another-secret-0001') }).refused()).toBe('Authentication error');
    });
  });

  describe('derived fields', () => {
    test('UPDATE_SESSION cannot overwrite the User-Agent and geo fields; other fields still change', async () => {
      const sid = numericSessionId();
      const tab = await connectTracker(hub, { projectKey: PK, sessionId: sid, userAgent: CHROME_UA, headers: { 'x-geo-country': 'FR' } });
      const before = await waitSession(hub, PK, sid);
      expect(before).toMatchObject({ userOs: 'Windows', userBrowser: 'Chrome', userDevice: null, userDeviceType: 'desktop', userCountry: 'FR' });
      tab.emit('UPDATE_SESSION', {
        meta: { tabId: 'tab1', version: 1 },
        data: {
          userID: 'changed@acme.io',
          userOs: 'TempleOS',
          userBrowser: 'Lynx',
          userBrowserVersion: '0.1',
          userDevice: 'Toaster',
          userDeviceType: 'smarttv',
          userCountry: 'XX',
          userState: 'Nowhere',
          userCity: 'Atlantis',
        },
      });
      const after = await waitSession(hub, PK, sid, (s) => s.userID === 'changed@acme.io');
      expect(after).toMatchObject({
        userOs: before.userOs,
        userBrowser: before.userBrowser,
        userBrowserVersion: before.userBrowserVersion,
        userDevice: null,
        userDeviceType: 'desktop',
        userCountry: 'FR',
        userState: null,
        userCity: null,
      });
    });

    test('a tracker without a User-Agent gets null names', async () => {
      const sid = numericSessionId();
      await connectTracker(hub, { projectKey: PK, sessionId: sid, userAgent: '' });
      expect(await waitSession(hub, PK, sid)).toMatchObject({ userOs: null, userBrowser: null, userBrowserVersion: null, userDevice: null, userDeviceType: 'desktop' });
    });
  });

  describe('tabId', () => {
    test('is the tab that stands for the session: the most recently active', async () => {
      const sid = numericSessionId();
      const first = await connectTracker(hub, { projectKey: PK, sessionId: sid, tabId: 'tab1', info: { pageTitle: 'One' } });
      await waitSession(hub, PK, sid);
      await connectTracker(hub, { projectKey: PK, sessionId: sid, tabId: 'tab2', info: { pageTitle: 'Two' } });
      expect(await waitSession(hub, PK, sid, (s) => s.tabIds.length === 2)).toMatchObject({ tabId: 'tab2', pageTitle: 'Two' });
      first.emit('UPDATE_SESSION', { meta: { tabId: 'tab1' }, data: { active: true } });
      await waitSession(hub, PK, sid, (s) => s.tabId === 'tab1' && s.pageTitle === 'One');
      // Announced by a tracker, it is ignored: the hub computes it.
      first.emit('UPDATE_SESSION', { meta: { tabId: 'tab1' }, data: { tabId: 'forged', userID: 'after' } });
      await waitSession(hub, PK, sid, (s) => s.userID === 'after');
      expect(sessionOf(hub, PK, sid)?.tabId).toBe('tab1');
    });
  });
});

describe('geo from MAXMINDDB_FILE', () => {
  let dir: string;
  let file: string;
  let hub: Hub;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hub-mmdb-'));
    file = join(dir, 'city.mmdb');
    writeFileSync(
      file,
      writeMmdb([
        ['81.2.69.0/24', cityRecord('GB', 'England', 'London')],
        ['127.0.0.0/8', cityRecord('FR', 'Île-de-France', 'Paris')],
        ['2.0.0.0/8', cityRecord('DE', null, null)],
      ]),
    );
    hub = await startLiveHub({ MAXMINDDB_FILE: file });
  });
  afterEach(closeAllPeers);
  afterAll(async () => {
    await hub.shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the first X-Forwarded-For address (the client, as the first proxy saw it)', async () => {
    const sid = numericSessionId();
    await connectTracker(hub, { projectKey: PK, sessionId: sid, headers: { 'x-forwarded-for': '81.2.69.160, 10.1.2.3' } });
    expect(await waitSession(hub, PK, sid)).toMatchObject({ userCountry: 'GB', userState: 'England', userCity: 'London' });
  });

  test('without the header: the socket address', async () => {
    const sid = numericSessionId();
    await connectTracker(hub, { projectKey: PK, sessionId: sid });
    expect(await waitSession(hub, PK, sid)).toMatchObject({ userCountry: 'FR', userState: 'Île-de-France', userCity: 'Paris' });
  });

  test('a country-only record, and an address the database does not have', async () => {
    const sid = numericSessionId();
    await connectTracker(hub, { projectKey: PK, sessionId: sid, headers: { 'x-forwarded-for': '2.3.4.5' } });
    expect(await waitSession(hub, PK, sid)).toMatchObject({ userCountry: 'DE', userState: null, userCity: null });
    const other = numericSessionId();
    await connectTracker(hub, { projectKey: PK, sessionId: other, headers: { 'x-forwarded-for': '8.8.8.8' } });
    expect(await waitSession(hub, PK, other)).toMatchObject({ userCountry: null, userState: null, userCity: null });
  });

  test('a header value that is not an address falls back to the socket address', async () => {
    const sid = numericSessionId();
    await connectTracker(hub, { projectKey: PK, sessionId: sid, headers: { 'x-forwarded-for': 'unknown' } });
    expect(await waitSession(hub, PK, sid)).toMatchObject({ userCountry: 'FR' });
  });

  test('CLIENT_IP_HEADER=none trusts no header; a trusted geo header wins over the database', async () => {
    const strict = await startLiveHub({ MAXMINDDB_FILE: file, CLIENT_IP_HEADER: 'none', GEO_CITY_HEADER: 'x-geo-city' });
    try {
      const sid = numericSessionId();
      await connectTracker(strict, { projectKey: PK, sessionId: sid, headers: { 'x-forwarded-for': '81.2.69.160', 'x-geo-city': 'Lyon' } });
      expect(await waitSession(strict, PK, sid)).toMatchObject({ userCountry: 'FR', userState: 'Île-de-France', userCity: 'Lyon' });
    } finally {
      await closeAllPeers();
      await strict.shutdown();
    }
  });

  test('a file that is not a MaxMind database stops the start, naming MAXMINDDB_FILE', async () => {
    const bad = join(dir, 'bad.mmdb');
    writeFileSync(bad, 'not a database');
    const config = loadConfig({ LISTEN_HOST: '127.0.0.1', LISTEN_PORT: '0', LOG_LEVEL: 'silent', MAXMINDDB_FILE: bad });
    await expect(startHub(config)).rejects.toThrow(ConfigError);
    await expect(startHub(config)).rejects.toThrow(/MAXMINDDB_FILE/);
    const missing = loadConfig({ LISTEN_HOST: '127.0.0.1', LISTEN_PORT: '0', LOG_LEVEL: 'silent', MAXMINDDB_FILE: join(dir, 'missing.mmdb') });
    await expect(startHub(missing)).rejects.toThrow(/MAXMINDDB_FILE: cannot read/);
  });
});


describe('Socket.IO at /socket, where OpenReplay\'s ingress sends /ws-assist/socket after stripping /ws-assist', () => {
  let hub: Hub;
  beforeAll(async () => {
    hub = await startLiveHub();
  });
  afterEach(closeAllPeers);
  afterAll(async () => {
    await hub.shutdown();
  });

  test.each([[['websocket']], [['polling']]])('a tracker and the real player connect on /socket (%j)', async (transports) => {
    const sid = numericSessionId();
    const tab = await connectTracker(hub, { projectKey: PK, sessionId: sid, tabId: 'tab1', minimalInfo: true, path: '/socket', transports: transports as ('websocket' | 'polling')[] });
    await waitSession(hub, PK, sid);
    expect(tab.socket.connected).toBe(true);
    // Closed here, and waited for on the hub: a polling client's close is a request of its own,
    // which must not still be in flight when the suite tears down.
    await tab.close();
    await waitNoSession(hub, PK, sid);
  });

  test('WS_PATH_ALIASES=none turns it off', async () => {
    const strict = await startLiveHub({ WS_PATH_ALIASES: 'none' });
    try {
      // Polling: a refused WebSocket upgrade would leave engine.io's destroy-upgrade timer running after the test.
      const sid = numericSessionId();
      const query = { peerId: `${PK}-${sid}-tab1`, identity: 'session', tabId: 'tab1', sessionInfo: JSON.stringify({ sessionID: sid, timestamp: Date.now() }) };
      const socket = io(strict.url, { path: '/socket', transports: ['polling'], forceNew: true, reconnection: false, timeout: 1000, query });
      expect(await new Peer(socket).refused()).toBeTruthy();
      // The same handshake on WS_PATH is accepted: only the path was refused.
      const ok = await new Peer(io(strict.url, { path: WS_PATH, transports: ['polling'], forceNew: true, reconnection: false, query })).connected();
      await waitSession(strict, PK, sid);
      await ok.close();
      await waitNoSession(strict, PK, sid);
    } finally {
      await closeAllPeers();
      await strict.shutdown();
    }
  });
});
