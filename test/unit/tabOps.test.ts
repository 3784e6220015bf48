/** The tab decisions of src/sessions/tabOps.ts: what op (or refusal) each input gives. */
import type { AgentState, TabState } from '../../src/sessions/model';
import { DEFAULT_SESSION_DATA_LIMITS } from '../../src/sessions/sessionData';
import { type RoomView, TabClock, agentEventTab, lastAgentConfig, tabChanged, tabJoinOp, tabUpdateOp } from '../../src/sessions/tabOps';

const REF = { projectKey: 'p'.repeat(20), sessionId: 's1' };
const limits = DEFAULT_SESSION_DATA_LIMITS;

function tab(tabId: string, over: Partial<TabState> = {}): TabState {
  return { tabId, socketId: `sock-${tabId}`, nodeId: 'n1', pageTitle: 'Home', active: true, connectedAt: 10, lastActiveAt: 10, ...over };
}
function agent(socketId: string, joinedAt: number, config: AgentState['config']): AgentState {
  return { socketId, nodeId: 'n1', info: {}, config, joinedAt };
}
function room(tabs: TabState[], over: Partial<RoomView> = {}): RoomView {
  return { data: { fields: { userID: 'u1' }, version: 1, origin: 'n1' }, tabs, agents: new Map(), ...over };
}
/** A clock that counts how often it was read. */
function clock(at = 1000): { clock: TabClock; reads: () => number } {
  let reads = 0;
  return { clock: new TabClock(() => {
    reads++;
    return at;
  }), reads: () => reads };
}

describe('TabClock', () => {
  test('never repeats nor goes back, even when the wall clock does', () => {
    const times = [5, 5, 4, 6];
    const c = new TabClock(() => times.shift() ?? 0);
    const seen = [c.next(), c.next(), c.next(), c.next()];
    expect(seen[0]).toBe(5);
    for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThan(seen[i - 1]!);
    expect(seen[3]).toBe(6);
  });
});

describe('tabJoinOp', () => {
  test('merges sessionInfo into the session data and splits off the tab fields', () => {
    const { clock: c } = clock(1234);
    const result = tabJoinOp(undefined, { ...REF, tabId: 't1', socketId: 'x', nodeId: 'n2', info: { userID: 'u9', pageTitle: 'Cart', active: false } }, limits, c);
    expect(result).toEqual({
      ok: true,
      op: {
        type: 'tab:up',
        ...REF,
        tab: { tabId: 't1', socketId: 'x', nodeId: 'n2', pageTitle: 'Cart', active: false, connectedAt: 1234, lastActiveAt: 1234 },
        data: { fields: { userID: 'u9' }, version: 1, origin: 'n2' },
      },
    });
  });

  test("a session's first tab: its data keeps the sessionInfo's values, no copies", () => {
    const info = { userID: 'u9', metadata: { plan: 'pro' }, extra: { list: [1] }, pageTitle: 'Cart' };
    const result = tabJoinOp(undefined, { ...REF, tabId: 't1', socketId: 'x', nodeId: 'n2', info }, limits, clock().clock);
    if (!result.ok) throw new Error(result.message);
    expect(result.op.data?.fields).toEqual({ userID: 'u9', metadata: { plan: 'pro' }, extra: { list: [1] } });
    expect(result.op.data?.fields.metadata).toBe(info.metadata);
    expect(result.op.data?.fields.extra).toBe(info.extra);
  });

  test('a second tab keeps what the session had and bumps its version', () => {
    const result = tabJoinOp(room([tab('t1')]), { ...REF, tabId: 't2', socketId: 'y', nodeId: 'n1', info: { metadata: { plan: 'pro' } } }, limits, clock().clock);
    if (!result.ok) throw new Error(result.message);
    expect(result.op.data).toEqual({ fields: { userID: 'u1', metadata: { plan: 'pro' } }, version: 2, origin: 'n1' });
    expect(result.op.tab).toMatchObject({ pageTitle: '', active: true });
  });

  test('data past the limits is refused and the clock is not read', () => {
    const { clock: c, reads } = clock();
    const result = tabJoinOp(undefined, { ...REF, tabId: 't1', socketId: 'x', nodeId: 'n1', info: { userID: 'x'.repeat(limits.maxBytes + 1) } }, limits, c);
    expect(result.ok).toBe(false);
    expect(reads()).toBe(0);
  });
});

describe('tabChanged', () => {
  const t = tab('t1', { pageTitle: 'Home', active: false });
  test.each([
    [{}, false],
    [{ pageTitle: 'Home' }, false],
    [{ active: false }, false],
    [{ pageTitle: 'Cart' }, true],
    [{ active: true }, true],
  ])('%j -> %s', (update, changed) => expect(tabChanged(t, update)).toBe(changed));

  test('becoming active again counts (it moves lastActiveAt)', () => expect(tabChanged(tab('t1', { active: true }), { active: true })).toBe(true));
});

describe('tabUpdateOp', () => {
  const t = tab('t1', { active: false });
  test('nothing new: no op, clock untouched', () => {
    const { clock: c, reads } = clock();
    expect(tabUpdateOp(REF, room([t]), t, { pageTitle: 'Home' }, limits, 'n1', c)).toEqual({ ok: true, op: undefined });
    expect(reads()).toBe(0);
  });

  test('session fields only: a data op', () => {
    const result = tabUpdateOp(REF, room([t]), t, { metadata: { a: '1' } }, limits, 'n1', clock().clock);
    expect(result).toEqual({ ok: true, op: { type: 'data', ...REF, data: { fields: { userID: 'u1', metadata: { a: '1' } }, version: 2, origin: 'n1' } } });
  });

  test('a tab field: tab:up with the new tab, and the data when it changed too', () => {
    const result = tabUpdateOp(REF, room([t]), t, { active: true, metadata: { a: '1' } }, limits, 'n1', clock(5000).clock);
    if (!result.ok || result.op?.type !== 'tab:up') throw new Error('expected tab:up');
    expect(result.op.tab).toEqual({ ...t, active: true, lastActiveAt: 5000 });
    expect(result.op.data?.version).toBe(2);
  });

  test('a title change keeps lastActiveAt', () => {
    const result = tabUpdateOp(REF, room([t]), t, { pageTitle: 'Cart' }, limits, 'n1', clock(5000).clock);
    expect(result).toMatchObject({ ok: true, op: { type: 'tab:up', tab: { pageTitle: 'Cart', lastActiveAt: 10 }, data: undefined } });
  });

  test('data past the limits is refused', () => {
    expect(tabUpdateOp(REF, room([t]), t, { metadata: { big: 'x'.repeat(limits.maxBytes + 1) } }, limits, 'n1', clock().clock)).toMatchObject({ ok: false });
  });

  test('a payload that is not an object changes nothing', () => {
    expect(tabUpdateOp(REF, room([t]), t, 'hello', limits, 'n1', clock().clock)).toEqual({ ok: true, op: undefined });
  });
});

describe('agentEventTab', () => {
  const r = room([tab('t1'), tab('t2')]);
  test('the tab meta.tabId names', () => expect(agentEventTab(r, { meta: { tabId: 't2' } })?.tabId).toBe('t2'));
  test('the first tab when the named one is gone or none is named', () => {
    expect(agentEventTab(r, { meta: { tabId: 'gone' } })?.tabId).toBe('t1');
    expect(agentEventTab(r, 'bare')?.tabId).toBe('t1');
  });
  test('none without tabs', () => {
    expect(agentEventTab(undefined, {})).toBeUndefined();
    expect(agentEventTab(room([]), {})).toBeUndefined();
  });
});

describe('lastAgentConfig', () => {
  test('the latest agent with a config; null without one', () => {
    const agents = new Map([
      ['a', agent('a', 1, { iceServers: ['a'] })],
      ['b', agent('b', 3, { iceServers: ['b'] })],
      ['c', agent('c', 5, null)],
    ]);
    expect(lastAgentConfig(room([], { agents }))).toEqual({ iceServers: ['b'] });
    expect(lastAgentConfig(room([]))).toBeNull();
  });
});
