/**
 * Live protocol, connect time: peerId and identity checks, the tracker's sessionInfo (JSON, auth,
 * size, User-Agent and geo derivation, defaults), and agent JWT authentication.
 */
import { findTab } from '../src/sessions/sessionIndex';
import type { Hub } from '../src/server';
import { CHROME_UA, IPHONE_UA, JWT_SECRET, agentPeer, agentToken, closeAllPeers, connectAgent, connectTracker, newSessionId, projectKey, restSession, sessionOf, startLiveHub, trackerPeer, waitSession } from './support/live';
import type { Socket as ServerSocket } from 'socket.io';

const PK = projectKey('handshake');

describe('live handshake', () => {
  let hub: Hub;

  beforeAll(async () => {
    hub = await startLiveHub();
  });
  afterEach(closeAllPeers);
  afterAll(async () => {
    await hub.shutdown();
  });

  describe('peerId', () => {
    test('the three-part form names the tab', async () => {
      const sid = newSessionId();
      await connectTracker(hub, { projectKey: PK, sessionId: sid, tabId: 'taba1' });
      const s = await waitSession(hub, PK, sid);
      expect(s.tabIds).toEqual(['taba1']);
      expect(s.sessionID).toBe(sid);
      expect(s.projectKey).toBe(PK);
    });

    test('the two-part form gets a generated tab id', async () => {
      const sid = newSessionId();
      await connectTracker(hub, { projectKey: PK, sessionId: sid, tabId: null });
      const s = await waitSession(hub, PK, sid);
      expect(s.tabIds).toHaveLength(1);
      expect(s.tabIds[0]).toMatch(/^[\w.:]{4,}$/);
    });

    test.each([
      ['one part', () => PK],
      ['four parts', () => `${PK}-${newSessionId()}-tabx-y`],
    ])('a peerId with %s is refused', async (_name, peerId) => {
      const msg = await trackerPeer(hub, { projectKey: PK, sessionId: 'x', query: { peerId: peerId(), identity: 'session', sessionInfo: '{}' } }).refused();
      expect(msg).toMatch(/peerId must be <projectKey>-<sessionId>/);
    });

    test('a project key of the wrong length is refused', async () => {
      const short = trackerPeer(hub, { projectKey: 'shortkey', sessionId: newSessionId() });
      expect(await short.refused()).toMatch(/project key must be 20 characters/);
      const long = trackerPeer(hub, { projectKey: `${PK}X`, sessionId: newSessionId() });
      expect(await long.refused()).toMatch(/project key must be 20 characters/);
    });

    test('a missing peerId is refused', async () => {
      const msg = await trackerPeer(hub, { projectKey: PK, sessionId: 'x', query: { identity: 'session', sessionInfo: '{}' } }).refused();
      expect(msg).toMatch(/peerId is missing/);
    });

    test('a missing or unknown identity is refused', async () => {
      const sid = newSessionId();
      const missing = trackerPeer(hub, { projectKey: PK, sessionId: sid, query: { peerId: `${PK}-${sid}-t1`, sessionInfo: '{}' } });
      expect(await missing.refused()).toMatch(/identity must be "session" or "agent"/);
      const other = trackerPeer(hub, { projectKey: PK, sessionId: sid, query: { peerId: `${PK}-${sid}-t1`, identity: 'admin', sessionInfo: '{}' } });
      expect(await other.refused()).toMatch(/identity must be "session" or "agent"/);
      expect(sessionOf(hub, PK, sid)).toBeUndefined();
    });

    describe('with PROJECT_KEY_LENGTH=0', () => {
      let anyHub: Hub;
      beforeAll(async () => {
        anyHub = await startLiveHub({ PROJECT_KEY_LENGTH: '0' });
      });
      afterAll(async () => {
        await anyHub.shutdown();
      });

      test('project keys of any length are accepted', async () => {
        for (const key of ['k', 'abc12', 'a'.repeat(40)]) {
          const sid = newSessionId();
          await connectTracker(anyHub, { projectKey: key, sessionId: sid, tabId: 't1' });
          expect((await waitSession(anyHub, key, sid)).projectKey).toBe(key);
        }
      });

      test('the part count is still checked', async () => {
        const msg = await trackerPeer(anyHub, { projectKey: 'k', sessionId: 'x', query: { peerId: 'a-b-c-d', identity: 'session' } }).refused();
        expect(msg).toMatch(/peerId must be/);
      });
    });
  });

  describe('tracker sessionInfo', () => {
    test('invalid JSON is refused with a clear message, and the hub keeps serving', async () => {
      const sid = newSessionId();
      const bad = trackerPeer(hub, { projectKey: PK, sessionId: sid, rawSessionInfo: '{"userID": "u1", oops' });
      expect(await bad.refused()).toBe('sessionInfo is not valid JSON');
      expect(sessionOf(hub, PK, sid)).toBeUndefined();

      const notObject = trackerPeer(hub, { projectKey: PK, sessionId: sid, rawSessionInfo: '[1,2]' });
      expect(await notObject.refused()).toMatch(/sessionInfo must be a JSON object/);

      const sid2 = newSessionId();
      await connectTracker(hub, { projectKey: PK, sessionId: sid2, info: { userID: 'after-bad' } });
      expect((await waitSession(hub, PK, sid2)).userID).toBe('after-bad');
      const health = await fetch(`${hub.url}/health`);
      expect(health.status).toBe(200);
    });

    test('sessionInfo in the handshake auth is accepted', async () => {
      const sid = newSessionId();
      await connectTracker(hub, {
        projectKey: PK,
        sessionId: sid,
        auth: { sessionInfo: { userID: 'via-auth', pageTitle: 'Auth page', metadata: { plan: 'gold' } } },
      });
      const s = await waitSession(hub, PK, sid);
      expect(s.userID).toBe('via-auth');
      expect(s.pageTitle).toBe('Auth page');
      expect(s.metadata).toEqual({ plan: 'gold' });
    });

    test('fields are derived from a desktop Chrome User-Agent', async () => {
      const sid = newSessionId();
      // The tracker's own claims about the browser do not win over the request's User-Agent.
      await connectTracker(hub, { projectKey: PK, sessionId: sid, userAgent: CHROME_UA, info: { userBrowser: 'Lynx' } });
      const s = await waitSession(hub, PK, sid);
      expect(s).toMatchObject({ userOs: 'Windows', userBrowser: 'Chrome', userBrowserVersion: '124.0.6367.91', userDeviceType: 'desktop', userDevice: null });
    });

    test('fields are derived from a mobile Safari User-Agent', async () => {
      const sid = newSessionId();
      await connectTracker(hub, { projectKey: PK, sessionId: sid, userAgent: IPHONE_UA });
      const s = await waitSession(hub, PK, sid);
      expect(s).toMatchObject({ userOs: 'iOS', userBrowser: 'Mobile Safari', userBrowserVersion: '17.4', userDeviceType: 'mobile', userDevice: 'iPhone' });
    });

    test('a long (> 128 characters) desktop User-Agent is parsed too', async () => {
      const sid = newSessionId();
      const edge = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.67';
      expect(edge.length).toBeGreaterThan(128);
      await connectTracker(hub, { projectKey: PK, sessionId: sid, userAgent: edge });
      const s = await waitSession(hub, PK, sid);
      expect(s).toMatchObject({ userOs: 'Windows', userBrowser: 'Edge', userBrowserVersion: '124.0.2478.67', userDeviceType: 'desktop' });
    });

    test('without a configured geo source, geo fields are null even if a geo header is sent', async () => {
      const sid = newSessionId();
      await connectTracker(hub, { projectKey: PK, sessionId: sid, headers: { 'cf-ipcountry': 'FR' }, info: { userCountry: 'XX' } });
      const s = await waitSession(hub, PK, sid);
      expect(s.userCountry).toBeNull();
      expect(s.userState).toBeNull();
      expect(s.userCity).toBeNull();
    });

    test('defaults are filled for a bare sessionInfo, and unknown fields are kept', async () => {
      const sid = newSessionId();
      await connectTracker(hub, { projectKey: PK, sessionId: sid, tabId: 'only', rawSessionInfo: JSON.stringify({ customField: 'kept', nested: { a: [1, 2] } }) });
      const s = await waitSession(hub, PK, sid);
      expect(s).toMatchObject({
        sessionID: sid,
        projectKey: PK,
        projectId: null,
        pageTitle: '',
        active: true,
        live: true,
        userID: '',
        userUUID: '',
        userAnonymousId: '',
        metadata: {},
        revID: '',
        timestamp: 0,
        trackerVersion: '',
        isSnippet: false,
        assistOnly: false,
        userDeviceType: 'desktop',
        userCountry: null,
        userState: null,
        userCity: null,
        tabIds: ['only'],
        customField: 'kept',
        nested: { a: [1, 2] },
      });
    });

    test('a real tracker sessionInfo is stored as announced', async () => {
      const sid = newSessionId();
      const ts = Date.now() - 60_000;
      await connectTracker(hub, {
        projectKey: PK,
        sessionId: sid,
        info: { timestamp: ts, projectID: 42, userUUID: 'uuid-1', revID: 'r9', trackerVersion: '11.0.1', isSnippet: true, assistOnly: true, pageTitle: 'Pricing' },
      });
      const s = await waitSession(hub, PK, sid);
      expect(s).toMatchObject({ timestamp: ts, projectId: 42, userUUID: 'uuid-1', revID: 'r9', trackerVersion: '11.0.1', isSnippet: true, assistOnly: true, pageTitle: 'Pricing' });
      expect(s.metadata).toEqual({ plan: 'free', company: 'acme' });
      const rest = await restSession(hub, PK, sid);
      expect(rest.status).toBe(200);
      expect(JSON.stringify(rest.body)).toContain(sid);
    });

    test('a sessionInfo past SESSION_DATA_MAX_BYTES is refused with a clear message and creates no session', async () => {
      const sid = newSessionId();
      const peer = trackerPeer(hub, { projectKey: PK, sessionId: sid, info: { blob: 'x'.repeat(20_000) } });
      // Either refused at connect, or accepted then told why and disconnected: never stored.
      const first = await peer.first(['connect_error', 'error']);
      expect(JSON.stringify(first.args)).toMatch(/exceeds the limit of 16384/);
      if (first.event === 'error') await peer.next('disconnect');
      expect(sessionOf(hub, PK, sid)).toBeUndefined();
    });

    describe('with raised limits', () => {
      let bigHub: Hub;
      beforeAll(async () => {
        bigHub = await startLiveHub({ SESSION_DATA_MAX_BYTES: String(128 * 1024) });
      });
      afterAll(async () => {
        await bigHub.shutdown();
      });

      test('a ~30 KB sessionInfo in the query string is accepted (no HTTP 431)', async () => {
        const sid = newSessionId();
        const metadata: Record<string, string> = {};
        for (let i = 0; i < 40; i++) metadata[`key${i}`] = `value-${i}-${'v'.repeat(200)}`;
        const info = { blob: 'b'.repeat(20_000), metadata };
        const peer = trackerPeer(bigHub, { projectKey: PK, sessionId: sid, info });
        // The query string really is past Node's default 16 KiB header limit.
        expect(new URLSearchParams({ sessionInfo: JSON.stringify(info) }).toString().length).toBeGreaterThan(28_000);
        await peer.connected();
        const s = await waitSession(bigHub, PK, sid);
        expect(s.blob).toBe('b'.repeat(20_000));
        expect(Object.keys(s.metadata)).toHaveLength(40);
        expect(s.metadata.key39).toBe(metadata.key39);
      });
    });

    describe('with GEO_COUNTRY_HEADER configured', () => {
      let geoHub: Hub;
      beforeAll(async () => {
        geoHub = await startLiveHub({ GEO_COUNTRY_HEADER: 'CF-IPCountry', GEO_CITY_HEADER: 'x-geo-city' });
      });
      afterAll(async () => {
        await geoHub.shutdown();
      });

      test('geo comes from the trusted headers', async () => {
        const sid = newSessionId();
        await connectTracker(geoHub, { projectKey: PK, sessionId: sid, headers: { 'cf-ipcountry': 'FR', 'x-geo-city': 'Paris' } });
        const s = await waitSession(geoHub, PK, sid);
        expect(s.userCountry).toBe('FR');
        expect(s.userCity).toBe('Paris');
        expect(s.userState).toBeNull();
      });

      test('geo is null when the header is absent', async () => {
        const sid = newSessionId();
        await connectTracker(geoHub, { projectKey: PK, sessionId: sid });
        const s = await waitSession(geoHub, PK, sid);
        expect(s.userCountry).toBeNull();
        expect(s.userCity).toBeNull();
      });
    });

    test('polling transport works for other clients', async () => {
      const sid = newSessionId();
      await connectTracker(hub, {
        projectKey: PK,
        sessionId: sid,
        transports: ['polling'],
        query: { peerId: `${PK}-${sid}-poll`, identity: 'session', sessionInfo: JSON.stringify({ userID: 'poller' }) },
      });
      expect((await waitSession(hub, PK, sid)).userID).toBe('poller');
    });
  });

  describe('agent authentication', () => {
    let sid: string;
    beforeEach(async () => {
      sid = newSessionId();
      await connectTracker(hub, { projectKey: PK, sessionId: sid });
    });

    const refusedWith = (token: string | null) => agentPeer(hub, { projectKey: PK, sessionId: sid, token }).refused();

    test('a valid HS256 token is accepted, with or without the Bearer prefix', async () => {
      const token = agentToken({ projectKey: PK, sessionId: sid });
      await connectAgent(hub, { projectKey: PK, sessionId: sid, token });
      await connectAgent(hub, { projectKey: PK, sessionId: sid, token: `Bearer ${token}` });
      expect(hub.ctx.index.room(PK, sid)?.agents.size).toBe(2);
    });

    test('a missing token is an authentication error', async () => {
      expect(await refusedWith(null)).toBe('Authentication error');
      expect(await refusedWith('')).toBe('Authentication error');
      expect(await refusedWith('not.a.jwt')).toBe('Authentication error');
    });

    test('a token signed with another secret is an authentication error', async () => {
      expect(await refusedWith(agentToken({ projectKey: PK, sessionId: sid }, {}, `${JWT_SECRET}-other`))).toBe('Authentication error');
    });

    test('an expired token is an authentication error', async () => {
      const expired = agentToken({ projectKey: PK, sessionId: sid, exp: Math.floor(Date.now() / 1000) - 30 });
      expect(await refusedWith(expired)).toBe('Authentication error');
    });

    test('an unsigned (alg: none) token is refused', async () => {
      const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ projectKey: PK, sessionId: sid, exp: Math.floor(Date.now() / 1000) + 300 })}.`;
      expect(await refusedWith(none)).toBe('Authentication error');
      expect(await refusedWith(`Bearer ${none}`)).toBe('Authentication error');
    });

    test('a token of another algorithm is refused', async () => {
      expect(await refusedWith(agentToken({ projectKey: PK, sessionId: sid }, { algorithm: 'HS512' }))).toBe('Authentication error');
    });

    test('a token for another session or project is an authorization error', async () => {
      expect(await refusedWith(agentToken({ projectKey: PK, sessionId: `${sid}9` }))).toBe('Authorization error');
      expect(await refusedWith(agentToken({ projectKey: projectKey('otherproject'), sessionId: sid }))).toBe('Authorization error');
      expect(await refusedWith(agentToken({}))).toBe('Authorization error');
      // A valid token for the session, presented with another session's peerId.
      const other = agentPeer(hub, { projectKey: PK, sessionId: sid, peerId: `${PK}-${sid}0`, token: agentToken({ projectKey: PK, sessionId: sid }) });
      expect(await other.refused()).toBe('Authorization error');
      expect(hub.ctx.index.room(PK, sid)?.agents.size ?? 0).toBe(0);
    });
  });

  describe('what a connected socket keeps', () => {
    /** The hub's side of a newly connected tracker tab. */
    async function serverSocketOf(tabId: string): Promise<ServerSocket | undefined> {
      const sid = newSessionId();
      await connectTracker(hub, { projectKey: PK, sessionId: sid, tabId });
      await waitSession(hub, PK, sid);
      const socketId = findTab(hub.ctx.index.room(PK, sid), tabId)?.socketId;
      return socketId === undefined ? undefined : hub.io.of('/').sockets.get(socketId);
    }

    test('nothing of the upgrade request: no URL, headers, query, auth or request object', async () => {
      const socket = await serverSocketOf('tabmem');
      expect(socket).toBeDefined();
      const { url, time, headers, query, auth } = socket?.handshake ?? {};
      expect({ url, time, headers, query, auth }).toEqual({ url: '', time: '', headers: {}, query: {}, auth: {} });
      expect((socket!.conn as unknown as { request?: unknown }).request).toBeUndefined();
    });

    test('none of the upgrade’s listeners that hold on to it; the error handlers that matter stay', async () => {
      const socket = await serverSocketOf('tablst');
      type Emitter = { rawListeners(event: string): Array<{ listener?: unknown; name: string }> };
      const transport = (socket!.conn as unknown as { transport: Emitter & { socket: Emitter & { _socket: Emitter } } }).transport;
      const sources = (emitter: Emitter, event: string): string[] => emitter.rawListeners(event).map((l) => String(l.listener ?? l));
      expect(transport.rawListeners('headers')).toHaveLength(0);
      expect(sources(transport.socket._socket, 'close').filter((src) => src.includes('this.emit("close")'))).toHaveLength(0);
      const wsErrors = transport.socket.rawListeners('error');
      expect(wsErrors.map((l) => l.name)).not.toContain('onUpgradeError');
      expect(wsErrors.length).toBeGreaterThan(0);
    });
  });
});
