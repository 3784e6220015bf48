/** The claims the Redis store keeps per tab (src/cluster/tabClaims.ts), without Redis. */
import { type HeldClaim, TabClaims } from '../../src/cluster/tabClaims';
import { PROJECT, makeTab } from '../support/sessions';

const REF = { projectKey: PROJECT, sessionId: 's1' };
const claim = (socketId: string, nodeId: string, connectedAt: number, replaces?: string): HeldClaim => ({
  ref: REF,
  tab: makeTab('t1', { socketId, nodeId, connectedAt }),
  replaces,
});

describe('TabClaims', () => {
  test('a new socket on a tab another node claims is a conflict; the same socket again is not', () => {
    const claims = new TabClaims();
    expect(claims.add(claim('a', 'n1', 10))).toBe(false);
    expect(claims.add(claim('b', 'n1', 20))).toBe(false);
    expect(claims.add(claim('c', 'n2', 30))).toBe(true);
    expect(claims.add(claim('c', 'n2', 30))).toBe(false);
    expect(claims.get(REF, 't1', 'c')?.tab.nodeId).toBe('n2');
  });

  test('the earliest claim wins and the rest lost; a replacement wins over what it replaced', () => {
    const claims = new TabClaims();
    claims.add(claim('late', 'n2', 30));
    claims.add(claim('early', 'n1', 10));
    let decided = claims.decide(REF, 't1');
    expect(decided.winner?.tab.socketId).toBe('early');
    expect(decided.losers.map((c) => c.tab.socketId)).toEqual(['late']);
    claims.add(claim('takeover', 'n3', 40, 'early'));
    decided = claims.decide(REF, 't1');
    expect(decided.winner?.tab.socketId).toBe('late');
  });

  test('dropping the last claim forgets the tab', () => {
    const claims = new TabClaims();
    claims.add(claim('a', 'n1', 10));
    claims.drop(REF, 't1', 'a');
    expect(claims.decide(REF, 't1')).toEqual({ winner: undefined, losers: [] });
    expect(claims.all()).toEqual([]);
  });

  test("a node's claims go at once, and the tabs they were on are named", () => {
    const claims = new TabClaims();
    claims.add(claim('a', 'n1', 10));
    claims.add(claim('b', 'n2', 20));
    claims.add({ ref: { ...REF, sessionId: 's2' }, tab: makeTab('t9', { socketId: 'c', nodeId: 'n1' }) });
    expect(claims.dropNode('n1')).toEqual([
      { ref: REF, tabId: 't1' },
      { ref: { ...REF, sessionId: 's2' }, tabId: 't9' },
    ]);
    expect(claims.all().map((c) => c.tab.socketId)).toEqual(['b']);
    expect(claims.decide(REF, 't1').winner?.tab.socketId).toBe('b');
  });

  test("a node's tabs in a room are all its claims there, the losing ones included", () => {
    const claims = new TabClaims();
    claims.add(claim('early', 'n1', 10));
    claims.add(claim('late', 'n2', 30));
    claims.add({ ref: REF, tab: makeTab('t2', { socketId: 'other-tab', nodeId: 'n2' }) });
    claims.add({ ref: { ...REF, sessionId: 's2' }, tab: makeTab('t1', { socketId: 'elsewhere', nodeId: 'n2' }) });
    expect(claims.decide(REF, 't1').winner?.tab.socketId).toBe('early');
    expect(claims.tabsOf(REF, 'n2').map((t) => t.socketId)).toEqual(['late', 'other-tab']);
    expect(claims.tabsOf(REF, 'n3')).toEqual([]);
    claims.drop(REF, 't1', 'late');
    expect(claims.tabsOf(REF, 'n2').map((t) => t.socketId)).toEqual(['other-tab']);
  });
});
