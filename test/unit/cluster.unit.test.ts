/**
 * The pure side of the cluster store (cluster/nodeState.ts): a node's share of the index, the ops
 * that reconcile an index with loaded shares, the same-tab race rule, and the decoding of what
 * comes back from Redis. No Redis here.
 */
import {
  type NodeShares,
  decodeShares,
  decodeStatePayload,
  encodeStatePayload,
  isIndexOp,
  parseRoomField,
  pickClaim,
  reconcileOps,
  roomField,
  sharesOf,
} from '../../src/cluster/nodeState';
import { SessionIndex, findTab } from '../../src/sessions/sessionIndex';
import { PROJECT, agentUp, makeAgent, makeData, makeTab, tabUp } from '../support/sessions';

function indexWith(...ops: Parameters<SessionIndex['apply']>[0][]): SessionIndex {
  const index = new SessionIndex();
  for (const op of ops) index.apply(op);
  return index;
}

const field = (sessionId: string) => roomField(PROJECT, sessionId);

describe('room fields', () => {
  test('round-trip whatever the ids hold, and refuse anything else', () => {
    expect(parseRoomField(roomField('p-1"x', 's\u0000:2'))).toEqual({ projectKey: 'p-1"x', sessionId: 's\u0000:2' });
    for (const bad of ['', 'nope', '["only-one"]', '[1,2]', '{"a":1}']) expect(parseRoomField(bad)).toBeUndefined();
  });
});

describe('shares', () => {
  test('a node\u2019s share lists only its own tabs and agents, and the data only where it has tabs', () => {
    const index = indexWith(
      tabUp('s1', makeTab('t1', { nodeId: 'a' }), makeData({ userID: 'u1' }, 3, 'b')),
      tabUp('s1', makeTab('t2', { nodeId: 'b', socketId: 'sb' })),
      agentUp('s1', makeAgent('ag-a', { nodeId: 'a' })),
      agentUp('s2', makeAgent('ag-a2', { nodeId: 'a' })),
    );
    const a = sharesOf(index, 'a');
    expect([...a.keys()].sort()).toEqual([field('s1'), field('s2')].sort());
    expect(a.get(field('s1'))).toEqual({ data: makeData({ userID: 'u1' }, 3, 'b'), tabs: [makeTab('t1', { nodeId: 'a' })], agents: [makeAgent('ag-a', { nodeId: 'a' })] });
    expect(a.get(field('s2'))).toEqual({ tabs: [], agents: [makeAgent('ag-a2', { nodeId: 'a' })] });
    expect(sharesOf(index, 'c').size).toBe(0);
  });

  test('a share built from claims lists a tab whose claim lost too, with the room\u2019s data', () => {
    const index = indexWith(tabUp('s1', makeTab('t1', { nodeId: 'a', socketId: 'won' }), makeData({ userID: 'u1' }, 2, 'a')));
    const lost = makeTab('t1', { nodeId: 'b', socketId: 'lost' });
    expect(sharesOf(index, 'b').size).toBe(0);
    const b = sharesOf(index, 'b', (room) => (room.sessionId === 's1' ? [lost] : []));
    expect(b.get(field('s1'))).toEqual({ data: makeData({ userID: 'u1' }, 2, 'a'), tabs: [lost], agents: [] });
  });

  test('a state payload and a hash decode back to the shares; bad fields are counted, not trusted', () => {
    const index = indexWith(tabUp('s1', makeTab('t1', { nodeId: 'a' }), makeData({ userID: 'u1' })));
    const shares = sharesOf(index, 'a');
    const pairs = [...shares].map(([f, s]) => [f, JSON.stringify(s)] as const);
    expect(decodeStatePayload(encodeStatePayload(pairs))).toEqual(shares);
    expect(decodeStatePayload('[["x", {}]]')).toBeUndefined();
    const { shares: decoded, invalid } = decodeShares({ ...Object.fromEntries(pairs), [field('bad')]: '{"tabs":[{"tabId":1}],"agents":[]}', junk: '{}' });
    expect(decoded).toEqual(shares);
    expect(invalid).toBe(2);
  });

  test('ops from the stream are checked before they reach the index', () => {
    expect(isIndexOp(tabUp('s1', makeTab('t1')))).toBe(true);
    expect(isIndexOp({ type: 'node:down', nodeId: 'a' })).toBe(true);
    expect(isIndexOp({ type: 'tab:up', projectKey: PROJECT, sessionId: 's1', tab: { tabId: 't1' } })).toBe(false);
    expect(isIndexOp({ type: 'drop-everything' })).toBe(false);
    expect(isIndexOp(null)).toBe(false);
  });
});

describe('reconcileOps', () => {
  test('makes the index hold exactly the loaded shares of the replaced nodes, and leaves the others alone', () => {
    const index = indexWith(
      tabUp('s1', makeTab('t1', { nodeId: 'a', socketId: 'a1' }), makeData({ userID: 'u1' })),
      tabUp('s2', makeTab('t1', { nodeId: 'b', socketId: 'b-old' }), makeData({ userID: 'u2' })),
      agentUp('s2', makeAgent('gone-agent', { nodeId: 'b' })),
      tabUp('s3', makeTab('t1', { nodeId: 'c', socketId: 'c1' }), makeData({ userID: 'u3' })),
      tabUp('s4', makeTab('t1', { nodeId: 'self', socketId: 'own' }), makeData({ userID: 'u4' })),
    );
    // b now has a new socket for s2 and a new session s5; c is gone (no state); a is unchanged.
    const states = new Map<string, NodeShares>([
      ['a', sharesOf(index, 'a')],
      [
        'b',
        new Map([
          [field('s2'), { data: makeData({ userID: 'u2-new' }, 2, 'b'), tabs: [makeTab('t1', { nodeId: 'b', socketId: 'b-new' })], agents: [] }],
          [field('s5'), { data: makeData({ userID: 'u5' }, 1, 'b'), tabs: [makeTab('t9', { nodeId: 'b', socketId: 'b5' })], agents: [] }],
        ]),
      ],
    ]);
    const events: string[] = [];
    index.onChange((c) => events.push(`${c.sessionId}:${c.before ? 'had' : 'new'}->${c.after ? 'has' : 'gone'}`));
    for (const op of reconcileOps(index, states, (id) => id !== 'self')) index.apply(op);
    expect(index.session(PROJECT, 's1')?.userID).toBe('u1');
    expect(findTab(index.room(PROJECT, 's2'), 't1')?.socketId).toBe('b-new');
    expect(index.session(PROJECT, 's2')?.userID).toBe('u2-new');
    expect(index.room(PROJECT, 's2')?.agents.size).toBe(0);
    expect(index.room(PROJECT, 's3')).toBeUndefined();
    expect(index.session(PROJECT, 's4')?.userID).toBe('u4');
    expect(index.session(PROJECT, 's5')?.userID).toBe('u5');
    // a's unchanged share caused no change event (a resync that finds nothing new is silent).
    expect(events.filter((e) => e.startsWith('s1:'))).toEqual([]);
    // Reconciling again changes nothing.
    const before = events.length;
    for (const op of reconcileOps(index, states, (id) => id !== 'self')) index.apply(op);
    expect(events.length).toBe(before);
  });

  test('a share that lists another node\u2019s socket does not get to claim it', () => {
    const index = new SessionIndex();
    const states = new Map<string, NodeShares>([['a', new Map([[field('s1'), { tabs: [makeTab('t1', { nodeId: 'b' })], agents: [] }]])]]);
    expect(reconcileOps(index, states, () => true)).toEqual([]);
  });

  test('competing claims on one tab are offered earliest connection first', () => {
    const index = new SessionIndex();
    const states = new Map<string, NodeShares>([
      ['b', new Map([[field('s1'), { tabs: [makeTab('t1', { nodeId: 'b', socketId: 'late', connectedAt: 20 })], agents: [] }]])],
      ['a', new Map([[field('s1'), { tabs: [makeTab('t1', { nodeId: 'a', socketId: 'early', connectedAt: 10 })], agents: [] }]])],
    ]);
    const ops = reconcileOps(index, states, () => true);
    expect(ops.map((op) => (op.type === 'tab:up' ? op.tab.socketId : op.type))).toEqual(['early', 'late']);
  });
});

describe('pickClaim: one holder per tab, whatever order the claims arrived in', () => {
  const early = makeTab('t1', { nodeId: 'b', socketId: 'sb', connectedAt: 100 });
  const late = makeTab('t1', { nodeId: 'a', socketId: 'sa', connectedAt: 200 });
  const sameTimeA = makeTab('t1', { nodeId: 'a', socketId: 's1', connectedAt: 100 });

  test('no claim, no holder', () => {
    expect(pickClaim([])).toBeUndefined();
  });

  test('the earliest connection wins, in any order', () => {
    expect(pickClaim([{ tab: late }, { tab: early }])?.tab.socketId).toBe('sb');
    expect(pickClaim([{ tab: early }, { tab: late }])?.tab.socketId).toBe('sb');
  });

  test('a tie goes to the lower node id', () => {
    expect(pickClaim([{ tab: early }, { tab: sameTimeA }])?.tab.socketId).toBe('s1');
    expect(pickClaim([{ tab: sameTimeA }, { tab: early }])?.tab.socketId).toBe('s1');
  });

  test('a claim that replaced a stale holder wins over it, however early the holder connected', () => {
    expect(pickClaim([{ tab: early }, { tab: late, replaces: 'sb' }])?.tab.socketId).toBe('sa');
  });

  test('when the winner leaves, the claim it beat holds the tab (a refused claim is reconsidered)', () => {
    const claims = [{ tab: early }, { tab: late }];
    expect(pickClaim(claims.filter((c) => c.tab.socketId !== 'sb'))?.tab.socketId).toBe('sa');
  });
});
