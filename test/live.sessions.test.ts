/**
 * Live protocol, session state: how the tabs of one session combine (multi-tab, duplicate tabs,
 * leaves) and how UPDATE_SESSION changes the stored session and reaches the room's agents.
 */
import { findTab } from '../src/sessions/sessionIndex';
import type { Session } from '../src/sessions/model';
import type { Hub } from '../src/server';
import { type Peer, closeAllPeers, connectAgent, connectTracker, newSessionId, projectKey, restSession, sessionOf, startLiveHub, trackerPeer, waitNoSession, waitSession } from './support/live';

const PK = projectKey('sessions');

describe('live sessions', () => {
  let hub: Hub;

  beforeAll(async () => {
    hub = await startLiveHub();
  });
  afterEach(closeAllPeers);
  afterAll(async () => {
    await hub.shutdown();
  });

  describe('multi-tab', () => {
    test('two tabs of one session make one session with both tab ids', async () => {
      const sid = newSessionId();
      await connectTracker(hub, { projectKey: PK, sessionId: sid, tabId: 'taba', info: { pageTitle: 'Page A', active: true } });
      await waitSession(hub, PK, sid);
      await connectTracker(hub, { projectKey: PK, sessionId: sid, tabId: 'tabb', info: { pageTitle: 'Page B', active: false } });
      const s = await waitSession(hub, PK, sid, (x) => x.tabIds.length === 2);
      expect(s.tabIds).toEqual(['taba', 'tabb']);
      expect([...hub.ctx.index.sessions(PK)].filter((x) => x.sessionID === sid)).toHaveLength(1);
      // One tab active is enough.
      expect(s.active).toBe(true);
      // The tab that connected last is the most recently active one.
      expect(s.pageTitle).toBe('Page B');
      const rest = await restSession(hub, PK, sid);
      expect(rest.status).toBe(200);
      expect(JSON.stringify(rest.body)).toContain('"tabIds":["taba","tabb"]');
    });

    test('active is true if any tab is, and pageTitle follows the most recently active tab', async () => {
      const sid = newSessionId();
      const a = await connectTracker(hub, { projectKey: PK, sessionId: sid, tabId: 'taba', info: { pageTitle: 'Page A' } });
      await waitSession(hub, PK, sid);
      const b = await connectTracker(hub, { projectKey: PK, sessionId: sid, tabId: 'tabb', info: { pageTitle: 'Page B' } });
      await waitSession(hub, PK, sid, (s) => s.tabIds.length === 2 && s.pageTitle === 'Page B');

      // Tab A comes to the foreground (what the tracker sends on visibilitychange), right away.
      b.emit('UPDATE_SESSION', { meta: { tabId: 'tabb' }, data: { active: false } });
      a.emit('UPDATE_SESSION', { meta: { tabId: 'taba' }, data: { active: true } });
      let s = await waitSession(hub, PK, sid, (x) => x.pageTitle === 'Page A');
      expect(s.active).toBe(true);

      // A title change of a background tab does not change the session's title.
      b.emit('UPDATE_SESSION', { meta: { tabId: 'tabb' }, data: { pageTitle: 'Page B2' } });
      a.emit('UPDATE_SESSION', { meta: { tabId: 'taba' }, data: { active: false } });
      s = await waitSession(hub, PK, sid, (x) => x.active === false);
      expect(s.pageTitle).toBe('Page A');

      b.emit('UPDATE_SESSION', { meta: { tabId: 'tabb' }, data: { active: true } });
      s = await waitSession(hub, PK, sid, (x) => x.active === true);
      expect(s.pageTitle).toBe('Page B2');
    });

    test('a duplicate tab id gets SESSION_ALREADY_CONNECTED and is disconnected; the first tab stays', async () => {
      const sid = newSessionId();
      const first = await connectTracker(hub, { projectKey: PK, sessionId: sid, tabId: 'tab1', info: { pageTitle: 'First' } });
      await waitSession(hub, PK, sid);
      const dup = trackerPeer(hub, { projectKey: PK, sessionId: sid, tabId: 'tab1', info: { pageTitle: 'Second', userID: 'intruder' } });
      expect(await dup.next('SESSION_ALREADY_CONNECTED')).toEqual([]);
      expect(await dup.next('disconnect')).toEqual(['io server disconnect']);

      expect(first.socket.connected).toBe(true);
      const room = hub.ctx.index.room(PK, sid);
      expect(room?.tabs.length).toBe(1);
      expect(findTab(room, 'tab1')?.socketId).toBe(first.id);
      // The newcomer's data was not merged, and its leave did not remove the first tab.
      let s = sessionOf(hub, PK, sid) as Session;
      expect(s.pageTitle).toBe('First');
      expect(s.userID).toBe('user@example.com');
      // The first tab still drives the session.
      first.emit('UPDATE_SESSION', { meta: { tabId: 'tab1' }, data: { userID: 'still-first' } });
      s = await waitSession(hub, PK, sid, (x) => x.userID === 'still-first');
      expect(s.tabIds).toEqual(['tab1']);
      // Its leave is silent: nobody hears of the refused newcomer.
      await first.quiet('NO_AGENT');
    });

    test('a duplicate tab joining a room with agents gets none of the agent events, and the agents hear nothing', async () => {
      const sid = newSessionId();
      const first = await connectTracker(hub, { projectKey: PK, sessionId: sid, tabId: 'tab1' });
      await waitSession(hub, PK, sid);
      const agent = await connectAgent(hub, { projectKey: PK, sessionId: sid });
      await first.next('NEW_AGENT');
      const dup = trackerPeer(hub, { projectKey: PK, sessionId: sid, tabId: 'tab1' });
      await dup.next('SESSION_ALREADY_CONNECTED');
      await dup.next('disconnect');
      expect(dup.all('AGENTS_CONNECTED')).toEqual([]);
      expect(dup.all('WEBRTC_CONFIG')).toEqual([]);
      await Promise.all([agent.quiet('SESSION_RECONNECTED'), agent.quiet('SESSION_DISCONNECTED'), first.quiet('SESSION_RECONNECTED')]);
      expect(findTab(hub.ctx.index.room(PK, sid), 'tab1')?.socketId).toBe(first.id);
    });

    test('refused tabs (duplicate, oversized data) are not counted as open connections', async () => {
      const own = await startLiveHub();
      const open = async () => (await own.ctx.metrics.connections.get()).values.find((v) => v.labels.role === 'session')?.value ?? 0;
      try {
        const sid = newSessionId();
        await connectTracker(own, { projectKey: PK, sessionId: sid, tabId: 'tab1' });
        expect(await open()).toBe(1);
        const dup = trackerPeer(own, { projectKey: PK, sessionId: sid, tabId: 'tab1' });
        await dup.next('SESSION_ALREADY_CONNECTED');
        await dup.next('disconnect');
        expect(await open()).toBe(1);
        const big = trackerPeer(own, { projectKey: PK, sessionId: sid, tabId: 'tab2', info: { blob: 'x'.repeat(20_000) } });
        await big.first(['connect_error', 'disconnect']);
        expect(await open()).toBe(1);
        expect(own.ctx.index.session(PK, sid)?.tabIds).toEqual(['tab1']);
      } finally {
        await closeAllPeers();
        await own.shutdown();
      }
    });

    test('a leaving tab is removed; the session ends with its last tab', async () => {
      const sid = newSessionId();
      const a = await connectTracker(hub, { projectKey: PK, sessionId: sid, tabId: 'taba' });
      const b = await connectTracker(hub, { projectKey: PK, sessionId: sid, tabId: 'tabb' });
      await waitSession(hub, PK, sid, (s) => s.tabIds.length === 2);
      await b.close();
      const s = await waitSession(hub, PK, sid, (x) => x.tabIds.length === 1);
      expect(s.tabIds).toEqual(['taba']);
      await a.close();
      await waitNoSession(hub, PK, sid);
      expect(hub.ctx.index.room(PK, sid)).toBeUndefined();
      expect((await restSession(hub, PK, sid)).status).toBe(404);
    });

    test('a tab can come back with the same tab id after leaving', async () => {
      const sid = newSessionId();
      const a = await connectTracker(hub, { projectKey: PK, sessionId: sid, tabId: 'taba' });
      await waitSession(hub, PK, sid);
      await a.close();
      await waitNoSession(hub, PK, sid);
      const again = await connectTracker(hub, { projectKey: PK, sessionId: sid, tabId: 'taba', info: { pageTitle: 'Back' } });
      const s = await waitSession(hub, PK, sid);
      expect(s.pageTitle).toBe('Back');
      expect(findTab(hub.ctx.index.room(PK, sid), 'taba')?.socketId).toBe(again.id);
    });
  });

  describe('UPDATE_SESSION', () => {
    let sid: string;
    let tab: Peer;
    let agent: Peer;

    /** Sends an update and resolves with what the agent received; the index is read at that moment. */
    async function update(payload: unknown): Promise<{ forwarded: unknown[]; session: Session }> {
      tab.emit('UPDATE_SESSION', payload);
      const forwarded = await agent.next('UPDATE_SESSION');
      // The forward is sent after the index changed: no polling needed.
      return { forwarded, session: sessionOf(hub, PK, sid) as Session };
    }

    beforeEach(async () => {
      sid = newSessionId();
      tab = await connectTracker(hub, { projectKey: PK, sessionId: sid, tabId: 'tab1', info: { pageTitle: 'Home', metadata: { plan: 'free', company: 'acme' } } });
      await waitSession(hub, PK, sid);
      agent = await connectAgent(hub, { projectKey: PK, sessionId: sid });
      await tab.next('NEW_AGENT');
    });

    test('a metadata update keeps the other metadata keys', async () => {
      const payload = { meta: { tabId: 'tab1' }, data: { metadata: { plan: 'pro' } } };
      const { forwarded, session } = await update(payload);
      expect(forwarded).toEqual([payload]);
      expect(session.metadata).toEqual({ plan: 'pro', company: 'acme' });
      const rest = await restSession(hub, PK, sid);
      expect(JSON.stringify(rest.body)).toContain('"metadata":{"plan":"pro","company":"acme"}');
    });

    test('pageTitle, userID and active updates', async () => {
      let r = await update({ meta: { tabId: 'tab1', version: 2 }, data: { pageTitle: 'Checkout' } });
      expect(r.forwarded).toEqual([{ meta: { tabId: 'tab1', version: 2 }, data: { pageTitle: 'Checkout' } }]);
      expect(r.session.pageTitle).toBe('Checkout');

      r = await update({ meta: { tabId: 'tab1' }, data: { userID: 'jane@example.com' } });
      expect(r.session.userID).toBe('jane@example.com');

      r = await update({ meta: { tabId: 'tab1' }, data: { active: false } });
      expect(r.session.active).toBe(false);
      r = await update({ meta: { tabId: 'tab1' }, data: { active: true } });
      expect(r.session.active).toBe(true);
      expect(r.session.pageTitle).toBe('Checkout');
    });

    test('an empty update changes nothing and is still forwarded', async () => {
      const before = sessionOf(hub, PK, sid);
      const r = await update({ meta: { tabId: 'tab1' }, data: {} });
      expect(r.forwarded).toEqual([{ meta: { tabId: 'tab1' }, data: {} }]);
      expect(r.session).toEqual(before);
    });

    test('a legacy bare payload is wrapped as {meta: {tabId, version: 1}, data}', async () => {
      const r = await update({ userID: 'legacy-user' });
      expect(r.forwarded).toEqual([{ meta: { tabId: 'tab1', version: 1 }, data: { userID: 'legacy-user' } }]);
      expect(r.session.userID).toBe('legacy-user');
    });

    test('tracker restart and call-state updates are stored and keep the session identity', async () => {
      const ts = Date.now() - 5000;
      let r = await update({ meta: { tabId: 'tab1' }, data: { sessionID: sid, timestamp: ts, projectID: 9 } });
      expect(r.session).toMatchObject({ sessionID: sid, timestamp: ts, projectId: 9, projectKey: PK });
      r = await update({ meta: { tabId: 'tab1' }, data: { agentIds: [], isCallActive: false } });
      expect(r.session).toMatchObject({ agentIds: [], isCallActive: false, sessionID: sid });
    });

    test('computed fields cannot be overwritten', async () => {
      const r = await update({ meta: { tabId: 'tab1' }, data: { live: false, tabIds: ['fake'], projectKey: 'x'.repeat(20), sessionID: 'other' } });
      expect(r.session).toMatchObject({ live: true, tabIds: ['tab1'], projectKey: PK, sessionID: sid });
    });

    test('prototype keys cannot pollute anything', async () => {
      const before = sessionOf(hub, PK, sid) as Session;
      // Built with JSON.parse: `__proto__` is then an own key, as it is on the wire.
      const payload = JSON.parse(
        `{"meta":{"tabId":"tab1"},"data":{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"prototype":{"polluted":"yes"},"metadata":{"__proto__":{"polluted":"yes"},"constructor":"x"}}}`,
      );
      const r = await update(payload);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(Object.prototype).not.toHaveProperty('polluted');
      expect(Object.getPrototypeOf(r.session)).toBe(Object.prototype);
      expect(Object.getPrototypeOf(r.session.metadata)).toBe(Object.prototype);
      expect(Object.hasOwn(r.session, 'constructor')).toBe(false);
      expect(Object.hasOwn(r.session, 'prototype')).toBe(false);
      expect(Object.hasOwn(r.session.metadata, 'constructor')).toBe(false);
      expect((r.session as Record<string, unknown>).polluted).toBeUndefined();
      expect(r.session).toEqual(before);

      // Nested objects other than metadata: no prototype swap, no own `constructor`.
      await update({ meta: { tabId: 'tab1' }, data: { custom: { keep: 1 } } });
      const nested = await update(
        JSON.parse(`{"meta":{"tabId":"tab1"},"data":{"custom":{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"added":2}}}`),
      );
      const custom = nested.session.custom as Record<string, unknown>;
      expect(Object.getPrototypeOf(custom)).toBe(Object.prototype);
      expect(custom.polluted).toBeUndefined();
      expect(Object.hasOwn(custom, 'constructor')).toBe(false);
      expect(custom).toEqual({ keep: 1, added: 2 });
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();

      // The same as a legacy bare payload.
      const bare = await update(JSON.parse(`{"__proto__":{"polluted":"yes"},"userID":"after-proto"}`));
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(bare.session.userID).toBe('after-proto');
      expect(Object.getPrototypeOf(bare.session)).toBe(Object.prototype);
    });

    test('an update past SESSION_DATA_MAX_BYTES is refused and the session is unchanged', async () => {
      const before = sessionOf(hub, PK, sid) as Session;
      tab.emit('UPDATE_SESSION', { meta: { tabId: 'tab1' }, data: { blob: 'x'.repeat(20_000), userID: 'too-big' } });
      tab.emit('UPDATE_SESSION', { meta: { tabId: 'tab1' }, data: { metadata: { many: 'y'.repeat(17_000) } } });
      // Events of one socket are handled in order: once this one is forwarded, the others were handled.
      const { forwarded, session } = await update({ meta: { tabId: 'tab1' }, data: { pageTitle: 'After' } });
      expect(forwarded).toEqual([{ meta: { tabId: 'tab1' }, data: { pageTitle: 'After' } }]);
      expect(session).toEqual({ ...before, pageTitle: 'After' });
      expect(session.blob).toBeUndefined();
      expect(agent.all('UPDATE_SESSION')).toHaveLength(1);
    });

    test('an update nested past SESSION_DATA_MAX_DEPTH is refused', async () => {
      const before = sessionOf(hub, PK, sid) as Session;
      let deep: Record<string, unknown> = { leaf: 1 };
      for (let i = 0; i < 12; i++) deep = { d: deep };
      tab.emit('UPDATE_SESSION', { meta: { tabId: 'tab1' }, data: { deep } });
      const { session } = await update({ meta: { tabId: 'tab1' }, data: { userID: 'shallow' } });
      expect(session).toEqual({ ...before, userID: 'shallow' });
      expect(agent.all('UPDATE_SESSION')).toHaveLength(1);
    });

    test('updates reach every agent of the room and no tab', async () => {
      const other = await connectTracker(hub, { projectKey: PK, sessionId: sid, tabId: 'tab2' });
      const agent2 = await connectAgent(hub, { projectKey: PK, sessionId: sid });
      const payload = { meta: { tabId: 'tab1' }, data: { userID: 'both-agents' } };
      const { forwarded } = await update(payload);
      expect(forwarded).toEqual([payload]);
      expect(await agent2.next('UPDATE_SESSION')).toEqual([payload]);
      await other.quiet('UPDATE_SESSION');
      await tab.quiet('UPDATE_SESSION');
    });
  });

  test('without agents, updates still reach the index', async () => {
    const sid = newSessionId();
    const tab = await connectTracker(hub, { projectKey: PK, sessionId: sid, tabId: 'tab1' });
    await waitSession(hub, PK, sid);
    tab.emit('UPDATE_SESSION', { meta: { tabId: 'tab1' }, data: { metadata: { plan: 'enterprise' } } });
    const s = await waitSession(hub, PK, sid, (x) => x.metadata.plan === 'enterprise');
    expect(s.metadata).toEqual({ plan: 'enterprise', company: 'acme' });
  });
});
