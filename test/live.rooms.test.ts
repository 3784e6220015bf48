/**
 * Live protocol, room events: exact event names and argument order between tabs and agents, as
 * the OpenReplay tracker-assist plugin and agent player expect them.
 */
import type { Hub } from '../src/server';
import { agentInfo, closeAllPeers, connectAgent, connectTracker, newSessionId, projectKey, startLiveHub, waitSession } from './support/live';
import { eventually } from './support/wait';

const PK = projectKey('rooms');

/** What a real agent player sends as `config`: a JSON string the tracker parses itself. */
const configOf = (name: string) => JSON.stringify({ iceServers: [{ urls: `stun:${name}.stun.test:3478` }] });

describe('live rooms', () => {
  let hub: Hub;
  let sid: string;

  beforeAll(async () => {
    hub = await startLiveHub();
  });
  beforeEach(() => {
    sid = newSessionId();
  });
  afterEach(closeAllPeers);
  afterAll(async () => {
    await hub.shutdown();
  });

  const tab = async (tabId: string, info: Record<string, unknown> = {}) => {
    const peer = await connectTracker(hub, { projectKey: PK, sessionId: sid, tabId, info });
    await waitSession(hub, PK, sid, (s) => s.tabIds.includes(tabId));
    return peer;
  };
  const agent = (name: string, session = sid) => connectAgent(hub, { projectKey: PK, sessionId: session, info: agentInfo(name), config: configOf(name) });

  describe('agent joins', () => {
    test('a room with a tab: the whole room gets WEBRTC_CONFIG, the tab gets NEW_AGENT(id, info)', async () => {
      const t = await tab('tab1');
      const a = await agent('alice');
      expect(await t.next('WEBRTC_CONFIG')).toEqual([configOf('alice')]);
      expect(await a.next('WEBRTC_CONFIG')).toEqual([configOf('alice')]);
      expect(await t.next('NEW_AGENT')).toEqual([a.id, agentInfo('alice')]);
      await Promise.all([a.quiet('NEW_AGENT'), a.quiet('SESSION_DISCONNECTED')]);

      // A second agent: everyone else (the tab and the first agent) hears of it.
      const b = await agent('bob');
      expect(await t.next('NEW_AGENT')).toEqual([b.id, agentInfo('bob')]);
      expect(await a.next('NEW_AGENT')).toEqual([b.id, agentInfo('bob')]);
      expect(await t.next('WEBRTC_CONFIG')).toEqual([configOf('bob')]);
      expect(await a.next('WEBRTC_CONFIG')).toEqual([configOf('bob')]);
      expect(await b.next('WEBRTC_CONFIG')).toEqual([configOf('bob')]);
      await b.quiet('NEW_AGENT');
      expect(hub.ctx.index.room(PK, sid)?.agents.size).toBe(2);
    });

    test('a room with no tab: the agent gets SESSION_DISCONNECTED', async () => {
      const a = await agent('alice');
      expect(await a.next('SESSION_DISCONNECTED')).toEqual([]);
      // An agent with no tab is in no live session.
      expect(hub.ctx.index.session(PK, sid)).toBeUndefined();
    });
  });

  describe('tab joins', () => {
    test('a room with agents: the tab gets WEBRTC_CONFIG, AGENTS_CONNECTED, AGENTS_INFO_CONNECTED; the others SESSION_RECONNECTED', async () => {
      const t1 = await tab('tab1');
      const a = await agent('alice');
      const b = await agent('bob');
      await t1.next('NEW_AGENT');
      await t1.next('NEW_AGENT');

      const t2 = await tab('tab2');
      expect(await t2.next('WEBRTC_CONFIG')).toEqual([configOf('bob')]);
      expect(await t2.next('AGENTS_CONNECTED')).toEqual([[a.id, b.id]]);
      expect(await t2.next('AGENTS_INFO_CONNECTED')).toEqual([
        [
          { ...agentInfo('alice'), socketId: a.id },
          { ...agentInfo('bob'), socketId: b.id },
        ],
      ]);
      for (const other of [t1, a, b]) expect(await other.next('SESSION_RECONNECTED')).toEqual([t2.id]);
      await t2.quiet('SESSION_RECONNECTED');
      // The order the tracker relies on: config first, then the agents.
      const order = t2.received.map((r) => r.event).filter((e) => ['connect', 'WEBRTC_CONFIG', 'AGENTS_CONNECTED', 'AGENTS_INFO_CONNECTED'].includes(e));
      expect(order).toEqual(['connect', 'WEBRTC_CONFIG', 'AGENTS_CONNECTED', 'AGENTS_INFO_CONNECTED']);
    });

    test('a room without agents: the tab gets none of the agent events', async () => {
      const t1 = await tab('tab1');
      const t2 = await tab('tab2');
      await Promise.all([t2.quiet('AGENTS_CONNECTED'), t2.quiet('WEBRTC_CONFIG'), t1.quiet('SESSION_RECONNECTED')]);
    });

    test('a tab coming back to agents that were waiting: they get SESSION_RECONNECTED', async () => {
      const t1 = await tab('tab1');
      const a = await agent('alice');
      await t1.close();
      expect(await a.next('SESSION_DISCONNECTED')).toEqual([]);
      const again = await tab('tab1');
      expect(await a.next('SESSION_RECONNECTED')).toEqual([again.id]);
      expect(await again.next('AGENTS_CONNECTED')).toEqual([[a.id]]);
      expect(await again.next('WEBRTC_CONFIG')).toEqual([configOf('alice')]);
    });
  });

  describe('leaves', () => {
    test('an agent leaving: AGENT_DISCONNECTED(id) to the room, and NO_AGENT once none is left', async () => {
      const t = await tab('tab1');
      const a = await agent('alice');
      const b = await agent('bob');
      await t.next('NEW_AGENT');
      await t.next('NEW_AGENT');
      const aId = a.id;
      const bId = b.id;

      await a.close();
      expect(await t.next('AGENT_DISCONNECTED')).toEqual([aId]);
      expect(await b.next('AGENT_DISCONNECTED')).toEqual([aId]);
      await t.quiet('NO_AGENT');

      await b.close();
      expect(await t.next('AGENT_DISCONNECTED')).toEqual([bId]);
      expect(await t.next('NO_AGENT')).toEqual([]);
      expect(hub.ctx.index.room(PK, sid)?.agents.size).toBe(0);
      // The session itself is untouched.
      expect(hub.ctx.index.session(PK, sid)?.tabIds).toEqual(['tab1']);
    });

    test('the last tab leaving: agents get SESSION_DISCONNECTED (not before)', async () => {
      const t1 = await tab('tab1');
      const t2 = await tab('tab2');
      const a = await agent('alice');
      const b = await agent('bob');
      await t1.close();
      await waitSession(hub, PK, sid, (s) => s.tabIds.length === 1);
      await a.quiet('SESSION_DISCONNECTED');
      await t2.close();
      expect(await a.next('SESSION_DISCONNECTED')).toEqual([]);
      expect(await b.next('SESSION_DISCONNECTED')).toEqual([]);
      expect(hub.ctx.index.session(PK, sid)).toBeUndefined();
      // The agents are still in the room, waiting for a tab.
      expect(hub.ctx.index.room(PK, sid)?.agents.size).toBe(2);
    });
  });

  describe('clients that start on long-polling', () => {
    // The hub trims a socket's listener tables once its handlers are attached, here while the
    // socket still polls: the upgrade to WebSocket that follows must work as on an untouched one.
    test('upgrade to WebSocket, then relay both ways and leave as usual', async () => {
      const transports: ('polling' | 'websocket')[] = ['polling', 'websocket'];
      const t = await connectTracker(hub, { projectKey: PK, sessionId: sid, tabId: 'tab1', transports });
      await waitSession(hub, PK, sid);
      const a = await connectAgent(hub, { projectKey: PK, sessionId: sid, info: agentInfo('alice'), config: configOf('alice'), transports });
      await eventually(() => [t, a].every((p) => p.socket.io.engine.transport.name === 'websocket'), () => 'both clients upgraded to WebSocket');
      const hubSide = hub.io.of('/').sockets.get(t.id);
      expect(hubSide?.conn.transport.name).toBe('websocket');

      t.emit('messages', { meta: { tabId: 'tab1', version: 1 }, data: [1, 2, 3] });
      expect(await a.next('messages')).toEqual([{ meta: { tabId: 'tab1', version: 1 }, data: [1, 2, 3] }]);
      a.emit('mouse_move', { meta: { tabId: 'tab1' }, data: [10, 20] });
      expect(await t.next('mouse_move')).toEqual([a.id, { meta: { tabId: 'tab1' }, data: [10, 20] }]);

      await t.close();
      expect(await a.next('SESSION_DISCONNECTED')).toEqual([]);
      expect(hub.ctx.index.session(PK, sid)).toBeUndefined();
    });
  });

  describe('tab -> room relay', () => {
    test('events reach the rest of the room with their first argument only', async () => {
      const t1 = await tab('tab1');
      const t2 = await tab('tab2');
      const a = await agent('alice');
      // A full DOM snapshot can be megabytes: it arrives intact.
      const batch = { meta: { tabId: 'tab1', version: 1 }, data: Array.from({ length: 20_000 }, (_, i) => ({ tp: 12, id: i, text: `node-${i}-${'x'.repeat(40)}` })) };
      t1.emit('messages', batch, 'ignored-second-argument');
      const got = await a.next('messages');
      expect(got).toHaveLength(1);
      expect(got[0]).toEqual(batch);
      expect(await t2.next('messages')).toEqual([batch]);
      await t1.quiet('messages');
    });

    test('an event with no argument is forwarded as {meta: {tabId, version: 1}}', async () => {
      const t1 = await tab('tab1');
      const a = await agent('alice');
      t1.emit('webrtc_canvas_restart');
      expect(await a.next('webrtc_canvas_restart')).toEqual([{ meta: { tabId: 'tab1', version: 1 } }]);
    });

    test('a legacy bare payload is wrapped as {meta: {tabId, version: 1}, data}', async () => {
      const t1 = await tab('tab1');
      const a = await agent('alice');
      t1.emit('videofeed', { streamId: 's1', enabled: true });
      expect(await a.next('videofeed')).toEqual([{ meta: { tabId: 'tab1', version: 1 }, data: { streamId: 's1', enabled: true } }]);
      t1.emit('call_end', 'agent-socket-id');
      expect(await a.next('call_end')).toEqual([{ meta: { tabId: 'tab1', version: 1 }, data: 'agent-socket-id' }]);
    });

    test('events stay in their room', async () => {
      const t1 = await tab('tab1');
      const otherSid = newSessionId();
      await connectTracker(hub, { projectKey: PK, sessionId: otherSid, tabId: 'tab1' });
      const stranger = await agent('eve', otherSid);
      const a = await agent('alice');
      t1.emit('messages', { meta: { tabId: 'tab1', version: 1 }, data: [1] });
      await a.next('messages');
      await stranger.quiet('messages');
    });
  });

  describe('agent -> tab relay', () => {
    test('an event reaches exactly the tab named by meta.tabId, as (agentSocketId, payload)', async () => {
      const t1 = await tab('tab1');
      const t2 = await tab('tab2');
      const a = await agent('alice');
      const b = await agent('bob');
      const payload = { meta: { tabId: 'tab2' }, data: { x: 10, y: 20 } };
      a.emit('move', payload);
      expect(await t2.next('move')).toEqual([a.id, payload]);
      await Promise.all([t1.quiet('move'), b.quiet('move'), a.quiet('move')]);
    });

    test('without (or with an unknown) meta.tabId, the first tab gets it', async () => {
      const t1 = await tab('tab1');
      const t2 = await tab('tab2');
      const a = await agent('alice');
      a.emit('click', { x: 1, y: 2 });
      expect(await t1.next('click')).toEqual([a.id, { x: 1, y: 2 }]);
      a.emit('scroll', { meta: { tabId: 'gone' }, data: [0, 100] });
      expect(await t1.next('scroll')).toEqual([a.id, { meta: { tabId: 'gone' }, data: [0, 100] }]);
      a.emit('request_control');
      expect(await t1.next('request_control')).toEqual([a.id, null]);
      await Promise.all([t2.quiet('click'), t2.quiet('scroll'), t2.quiet('request_control')]);
    });

    test('with no tab, the agent gets SESSION_DISCONNECTED', async () => {
      const a = await agent('alice');
      expect(await a.next('SESSION_DISCONNECTED')).toEqual([]);
      a.emit('click', { x: 1, y: 2 });
      expect(await a.next('SESSION_DISCONNECTED')).toEqual([]);
    });
  });

  describe('WEBRTC_AGENT_CALL', () => {
    test('reaches only the named agent, and only within the room', async () => {
      const t = await tab('tab1');
      const a = await agent('alice');
      const b = await agent('bob');
      const c = await agent('carol');
      const otherSid = newSessionId();
      await connectTracker(hub, { projectKey: PK, sessionId: otherSid, tabId: 'tab1' });
      const stranger = await agent('eve', otherSid);

      const call = { meta: { tabId: 'tab1' }, data: { toAgentId: b.id, fromAgentId: a.id, sdp: 'offer' } };
      a.emit('WEBRTC_AGENT_CALL', call);
      expect(await b.next('WEBRTC_AGENT_CALL')).toEqual([call]);
      await Promise.all([c.quiet('WEBRTC_AGENT_CALL'), a.quiet('WEBRTC_AGENT_CALL'), t.quiet('WEBRTC_AGENT_CALL')]);

      // An agent of another room is out of reach, even by its socket id.
      a.emit('WEBRTC_AGENT_CALL', { data: { toAgentId: stranger.id } });
      // And so is a tab.
      a.emit('WEBRTC_AGENT_CALL', { data: { toAgentId: t.id } });
      await Promise.all([stranger.quiet('WEBRTC_AGENT_CALL'), t.quiet('WEBRTC_AGENT_CALL'), b.quiet('WEBRTC_AGENT_CALL')]);
    });
  });

  test('a stray peer in a room does not leak room events to other sessions of the project', async () => {
    const t = await tab('tab1');
    const otherSid = newSessionId();
    const other = await connectTracker(hub, { projectKey: PK, sessionId: otherSid, tabId: 'tab1' });
    await agent('alice');
    await t.next('NEW_AGENT');
    await Promise.all([other.quiet('NEW_AGENT'), other.quiet('WEBRTC_CONFIG')]);
  });
});

