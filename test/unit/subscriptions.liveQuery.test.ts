/**
 * The pure core of live subscriptions: for random sequences of index operations and random
 * queries, a LiveQuery's window and total equal the index's own search, and the diffs it emits,
 * applied to a LiveView in order, rebuild exactly that window.
 */
import fc from 'fast-check';
import { LiveView } from '../../src/client/liveView';
import type { SessionsDiff } from '../../src/protocol';
import type { IndexOp } from '../../src/sessions/ops';
import { parseSearchQuery } from '../../src/sessions/query';
import { SessionIndex } from '../../src/sessions/sessionIndex';
import { LiveQuery } from '../../src/subscriptions/liveQuery';

const PROJECT = 'p'.repeat(20);
const users = fc.constantFrom('ann', 'bob', 'Carl', '');
const plans = fc.constantFrom('trial', 'free', 'pro');
const titles = fc.constantFrom('Home', 'Docs', 'Pricing');

const opArb = fc.oneof(
  fc.record({
    kind: fc.constant('up' as const),
    session: fc.integer({ min: 1, max: 12 }),
    tab: fc.integer({ min: 1, max: 2 }),
    userID: users,
    plan: plans,
    title: titles,
    active: fc.boolean(),
    timestamp: fc.integer({ min: 1, max: 20 }),
  }),
  fc.record({ kind: fc.constant('data' as const), session: fc.integer({ min: 1, max: 12 }), userID: users, plan: plans }),
  fc.record({ kind: fc.constant('down' as const), session: fc.integer({ min: 1, max: 12 }), tab: fc.integer({ min: 1, max: 2 }) }),
);

const queryArb = fc.record({
  filters: fc.subarray([
    { type: 'METADATA', source: 'plan', operator: 'is', value: ['pro', 'trial'] },
    { type: 'USERID', operator: 'contains', value: ['a'] },
    { type: 'USERID', value: [] },
  ]),
  sort: fc.constantFrom('timestamp', 'userID', 'pageTitle'),
  order: fc.constantFrom('ASC', 'DESC'),
  limit: fc.integer({ min: 1, max: 6 }),
});

describe('LiveQuery', () => {
  test('window, total and diffs follow the index search through random changes', () => {
    fc.assert(
      fc.property(queryArb, fc.array(fc.array(opArb, { maxLength: 8 }), { maxLength: 12 }), (rawQuery, batches) => {
        const parsed = parseSearchQuery(rawQuery);
        if (!parsed.ok) throw new Error(parsed.message);
        const query = { ...parsed.value, page: 1 };
        const index = new SessionIndex();
        const live = new LiveQuery(query, index.sessions(PROJECT));
        index.onChange((change) => live.apply(change));
        const view = new LiveView(query.sort, query.order);
        view.reset({ seq: 0, ...live.snapshot() });
        let seq = 0;
        let version = 0;
        for (const batch of batches) {
          for (const op of batch) {
            const sessionId = `s${op.session}`;
            const room = index.room(PROJECT, sessionId);
            let indexOp: IndexOp | undefined;
            if (op.kind === 'up') {
              indexOp = {
                type: 'tab:up',
                projectKey: PROJECT,
                sessionId,
                tab: { tabId: `t${op.tab}`, socketId: `${sessionId}-t${op.tab}`, nodeId: 'n', pageTitle: op.title, active: op.active, connectedAt: op.timestamp, lastActiveAt: op.timestamp },
                data: { fields: { userID: op.userID, metadata: { plan: op.plan }, timestamp: op.timestamp }, version: ++version, origin: 'n' },
              };
            } else if (op.kind === 'data' && room?.data) {
              indexOp = { type: 'data', projectKey: PROJECT, sessionId, data: { fields: { ...room.data.fields, userID: op.userID, metadata: { plan: op.plan } }, version: ++version, origin: 'n' } };
            } else if (op.kind === 'down') {
              indexOp = { type: 'tab:down', projectKey: PROJECT, sessionId, tabId: `t${op.tab}`, socketId: `${sessionId}-t${op.tab}` };
            }
            if (indexOp) index.apply(indexOp);
          }
          const expected = index.search(PROJECT, query);
          const expectedIds = expected.rooms.map((r) => r.sessionId);
          expect(live.window().map((s) => s.sessionID)).toEqual(expectedIds);
          expect(live.total).toBe(expected.total);
          const diff = live.takeDiff();
          if (diff) {
            const message: SessionsDiff = { subscriptionId: 'x', seq: ++seq, ...diff };
            expect(view.apply(message)).toBe('applied');
            expect(diff.added.length + diff.updated.length + diff.removed.length > 0 || diff.total !== undefined).toBe(true);
          }
          expect(view.list()).toEqual(expected.rooms.map((r) => r.view));
          expect(view.total).toBe(expected.total);
          // Once reported, nothing is left to send.
          expect(live.takeDiff()).toBeUndefined();
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('LiveView', () => {
  test('duplicates are ignored and gaps are not applied', () => {
    const view = new LiveView('timestamp', 'DESC');
    view.reset({ seq: 5, total: 0, sessions: [] });
    const diff = (seq: number): SessionsDiff => ({ subscriptionId: 'x', seq, total: seq, added: [], updated: [], removed: [] });
    expect(view.apply(diff(5))).toBe('duplicate');
    expect(view.apply(diff(7))).toBe('gap');
    expect(view.seq).toBe(5);
    expect(view.apply(diff(6))).toBe('applied');
    expect(view.total).toBe(6);
  });
});
