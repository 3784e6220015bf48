/**
 * A node's replica of the cluster view (src/cluster/replicaView.ts) without Redis: ops and shares
 * handed from one replica to another by hand, as the stream and a resync would.
 */
import { Registry } from 'prom-client';
import { createClusterMetrics } from '../../src/cluster/metrics';
import type { RoomRef } from '../../src/cluster/nodeState';
import { ReplicaView } from '../../src/cluster/replicaView';
import { createLogger } from '../../src/ops/logger';
import { SessionIndex, findTab } from '../../src/sessions/sessionIndex';
import { PROJECT, makeData, makeTab, tabDown, tabUp } from '../support/sessions';

interface Replica {
  id: string;
  index: SessionIndex;
  view: ReplicaView;
  lost: string[];
  changed: RoomRef[];
}

function replica(id: string): Replica {
  const index = new SessionIndex();
  const lost: string[] = [];
  const changed: RoomRef[] = [];
  const view = new ReplicaView({
    nodeId: id,
    index,
    logger: createLogger('silent', id),
    metrics: createClusterMetrics(new Registry()),
    onShareChanged: (ref) => changed.push(ref),
    onTabLost: (socketId) => lost.push(socketId),
  });
  return { id, index, view, lost, changed };
}

const holder = (r: Replica) => findTab(r.index.room(PROJECT, 's1'), 't1')?.socketId;
const early = tabUp('s1', makeTab('t1', { nodeId: 'a', socketId: 'sock-a', connectedAt: 1_000 }), makeData({ userID: 'from-a' }, 1, 'a'));
const late = tabUp('s1', makeTab('t1', { nodeId: 'b', socketId: 'sock-b', connectedAt: 2_000 }), makeData({ userID: 'from-b' }, 1, 'b'));

describe('ReplicaView', () => {
  test('a local claim that loses to another node\u2019s is refused once, and stays in this node\u2019s share', async () => {
    const b = replica('b');
    b.view.applyLocal(late);
    expect(holder(b)).toBe('sock-b');
    b.view.applyRemote(early);
    b.view.applyRemote(early);
    expect(holder(b)).toBe('sock-a');
    await Promise.resolve();
    expect(b.lost).toEqual(['sock-b']);
    expect(b.changed.length).toBeGreaterThan(0);
    const share = b.view.shares().get(JSON.stringify([PROJECT, 's1']));
    expect(share?.tabs.map((t) => t.socketId)).toEqual(['sock-b']);
  });

  test('a node that loads the shares after the race knows the losing claim: it holds the tab when the winner leaves', () => {
    const a = replica('a');
    const b = replica('b');
    a.view.applyLocal(early);
    b.view.applyLocal(late);
    b.view.applyRemote(early);
    a.view.applyRemote(late);
    // c loads a's and b's saved shares (a resync, or a late join), nothing of the ops before.
    const c = replica('c');
    c.view.replaceStates(
      new Map([
        ['a', a.view.shares()],
        ['b', b.view.shares()],
      ]),
      (id) => id !== 'c',
    );
    expect([a, b, c].map(holder)).toEqual(['sock-a', 'sock-a', 'sock-a']);
    const leave = tabDown('s1', 't1', 'sock-a');
    a.view.applyLocal(leave);
    b.view.applyRemote(leave);
    c.view.applyRemote(leave);
    expect([a, b, c].map(holder)).toEqual(['sock-b', 'sock-b', 'sock-b']);
  });

  test('a state that no longer lists a claim drops it, and the claim it beat holds the tab again', () => {
    const c = replica('c');
    c.view.applyRemote(late);
    c.view.applyRemote(early);
    expect(holder(c)).toBe('sock-a');
    // a re-states without s1 (its socket left while the stream was away): only b's claim is left.
    c.view.replaceStates(new Map([['a', new Map()]]), (id) => id === 'a');
    expect(holder(c)).toBe('sock-b');
  });

  test('a node that goes takes its claims with it; the others\u2019 claims on its tabs win', () => {
    const c = replica('c');
    c.view.applyRemote(early);
    c.view.applyRemote(late);
    c.view.dropNode('a');
    expect(holder(c)).toBe('sock-b');
    c.view.dropNode('b');
    expect(c.index.room(PROJECT, 's1')).toBeUndefined();
  });
});
