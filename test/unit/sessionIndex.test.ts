import type { JsonObject, TabState } from '../../src/sessions/model';
import { type SearchPage, type SessionChange, SessionIndex } from '../../src/sessions/sessionIndex';
import {
  OTHER_PROJECT,
  PROJECT,
  agentDown,
  agentUp,
  dataOp,
  makeAgent,
  makeData,
  makeTab,
  query,
  tabDown,
  tabUp,
} from '../support/sessions';

const ids = (page: SearchPage) => page.rooms.map((r) => r.sessionId);

/** An index that records every change event. */
function recorded() {
  const index = new SessionIndex();
  const changes: SessionChange[] = [];
  index.onChange((c) => changes.push(c));
  return { index, changes };
}

/** Adds a one-tab session with the given fields. */
function addSession(index: SessionIndex, sessionId: string, fields: JsonObject, projectKey = PROJECT): void {
  index.apply(tabUp(sessionId, makeTab(`${sessionId}-t`), makeData(fields), projectKey));
}

describe('SessionIndex.apply', () => {
  it('tab:up with data creates the session and reports it', () => {
    const { index, changes } = recorded();
    index.apply(tabUp('s1', makeTab('t1', { pageTitle: 'Blog' }), makeData({ userID: 'alice', timestamp: 5 })));
    const session = index.session(PROJECT, 's1');
    expect(session).toMatchObject({ sessionID: 's1', projectKey: PROJECT, userID: 'alice', timestamp: 5, pageTitle: 'Blog', tabIds: ['t1'], live: true });
    expect(index.size).toBe(1);
    expect(index.projectSize(PROJECT)).toBe(1);
    expect(changes).toEqual([{ projectKey: PROJECT, sessionId: 's1', before: undefined, after: session }]);
    expect([...index.sessions(PROJECT)]).toEqual([session]);
  });

  it('tab:up without any data yet makes no session and no event', () => {
    const { index, changes } = recorded();
    index.apply(tabUp('s1', makeTab('t1')));
    expect(index.session(PROJECT, 's1')).toBeUndefined();
    expect(index.size).toBe(0);
    expect(changes).toEqual([]);
    // The data that follows makes it appear.
    index.apply(dataOp('s1', makeData({ userID: 'u' })));
    expect(index.session(PROJECT, 's1')?.userID).toBe('u');
    expect(changes).toHaveLength(1);
    expect(changes[0]?.before).toBeUndefined();
  });

  it('combines several tabs: tabIds, active, pageTitle of the most recently active tab', () => {
    const { index } = recorded();
    index.apply(tabUp('s1', makeTab('t1', { pageTitle: 'One', active: false, connectedAt: 1, lastActiveAt: 1 }), makeData({})));
    index.apply(tabUp('s1', makeTab('t2', { pageTitle: 'Two', active: false, connectedAt: 2, lastActiveAt: 2 })));
    expect(index.session(PROJECT, 's1')).toMatchObject({ tabIds: ['t1', 't2'], active: false, pageTitle: 'Two' });
    index.apply(tabUp('s1', makeTab('t1', { pageTitle: 'One', active: true, connectedAt: 1, lastActiveAt: 3 })));
    expect(index.session(PROJECT, 's1')).toMatchObject({ tabIds: ['t1', 't2'], active: true, pageTitle: 'One' });
    expect(index.size).toBe(1);
  });

  it('tab:down removes the tab; the session ends when its last tab leaves', () => {
    const { index, changes } = recorded();
    index.apply(tabUp('s1', makeTab('t1', { connectedAt: 1 }), makeData({ userID: 'u' })));
    index.apply(tabUp('s1', makeTab('t2', { connectedAt: 2, lastActiveAt: 2 })));
    index.apply(tabDown('s1', 't2'));
    expect(index.session(PROJECT, 's1')?.tabIds).toEqual(['t1']);
    index.apply(tabDown('s1', 't1'));
    expect(index.session(PROJECT, 's1')).toBeUndefined();
    expect(index.room(PROJECT, 's1')).toBeUndefined();
    expect(index.size).toBe(0);
    expect(index.projectSize(PROJECT)).toBe(0);
    expect([...index.sessions(PROJECT)]).toEqual([]);
    expect([...index.allRooms()]).toEqual([]);
    const last = changes[changes.length - 1] as SessionChange;
    expect(last.after).toBeUndefined();
    expect(last.before?.tabIds).toEqual(['t1']);
  });

  it('ignores a stale tab:down from another socket (the tab reconnected)', () => {
    const { index, changes } = recorded();
    index.apply(tabUp('s1', makeTab('t1', { socketId: 'old' }), makeData({})));
    index.apply(tabUp('s1', makeTab('t1', { socketId: 'new', pageTitle: 'again' })));
    const before = changes.length;
    const version = index.projectVersion(PROJECT);
    index.apply(tabDown('s1', 't1', 'old'));
    expect(index.session(PROJECT, 's1')?.pageTitle).toBe('again');
    expect(changes).toHaveLength(before);
    expect(index.projectVersion(PROJECT)).toBe(version);
    index.apply(tabDown('s1', 't1', 'new'));
    expect(index.session(PROJECT, 's1')).toBeUndefined();
  });

  it('ignores tab:down and data for unknown sessions, tabs and projects', () => {
    const { index, changes } = recorded();
    index.apply(tabDown('nope', 't1'));
    index.apply(dataOp('nope', makeData({ userID: 'x' })));
    addSession(index, 's1', {});
    index.apply(tabDown('s1', 'other-tab'));
    index.apply(tabDown('s1', 's1-t', 'sock-s1-t', OTHER_PROJECT));
    expect(index.session(PROJECT, 's1')).toBeDefined();
    expect(changes).toHaveLength(1);
    expect(index.room(PROJECT, 'nope')).toBeUndefined();
  });

  it('data: a newer version replaces the data; an older one is ignored', () => {
    const { index, changes } = recorded();
    index.apply(tabUp('s1', makeTab('t1'), makeData({ userID: 'v1' }, 1)));
    index.apply(dataOp('s1', makeData({ userID: 'v3' }, 3)));
    expect(index.session(PROJECT, 's1')?.userID).toBe('v3');
    const events = changes.length;
    const version = index.projectVersion(PROJECT);
    index.apply(dataOp('s1', makeData({ userID: 'v2' }, 2)));
    expect(index.session(PROJECT, 's1')?.userID).toBe('v3');
    expect(changes).toHaveLength(events);
    expect(index.projectVersion(PROJECT)).toBe(version);
    // Applying the same op twice changes nothing either.
    index.apply(dataOp('s1', makeData({ userID: 'v3' }, 3)));
    expect(changes).toHaveLength(events);
  });

  it('data: a version tie is won by the higher origin, whatever the arrival order', () => {
    for (const order of [['node-a', 'node-b'], ['node-b', 'node-a']]) {
      const index = new SessionIndex();
      index.apply(tabUp('s1', makeTab('t1'), makeData({ userID: 'base' }, 1)));
      for (const origin of order) index.apply(dataOp('s1', makeData({ userID: origin }, 2, origin)));
      expect(index.session(PROJECT, 's1')?.userID).toBe('node-b');
    }
  });

  it('tab:up keeps the newer data it already has', () => {
    const index = new SessionIndex();
    index.apply(tabUp('s1', makeTab('t1'), makeData({ userID: 'new' }, 5)));
    index.apply(tabUp('s1', makeTab('t2'), makeData({ userID: 'old' }, 4)));
    expect(index.session(PROJECT, 's1')).toMatchObject({ userID: 'new', tabIds: ['t1', 't2'] });
  });

  it('data for a session with no tab left is stale and ignored', () => {
    const { index, changes } = recorded();
    index.apply(agentUp('s1', makeAgent('ag1')));
    index.apply(tabUp('s1', makeTab('t1'), makeData({ userID: 'u' }, 5)));
    index.apply(tabDown('s1', 't1'));
    const events = changes.length;
    index.apply(dataOp('s1', makeData({ userID: 'late' }, 6)));
    expect(index.session(PROJECT, 's1')).toBeUndefined();
    expect(changes).toHaveLength(events);
    // A new tab starts from its own data, even at a lower version than before.
    index.apply(tabUp('s1', makeTab('t2'), makeData({ userID: 'fresh' }, 1)));
    expect(index.session(PROJECT, 's1')?.userID).toBe('fresh');
  });

  it('agents keep the room but are not part of the view; no change events', () => {
    const { index, changes } = recorded();
    index.apply(agentUp('s1', makeAgent('ag1')));
    expect(index.room(PROJECT, 's1')?.agents.has('ag1')).toBe(true);
    expect(index.session(PROJECT, 's1')).toBeUndefined();
    expect(index.size).toBe(0);
    index.apply(tabUp('s1', makeTab('t1'), makeData({})));
    const view = index.session(PROJECT, 's1');
    index.apply(agentUp('s1', makeAgent('ag2')));
    index.apply(agentDown('s1', 'ag1'));
    expect(index.session(PROJECT, 's1')).toBe(view);
    expect(changes).toHaveLength(1);
    index.apply(tabDown('s1', 't1'));
    expect(index.room(PROJECT, 's1')?.agents.size).toBe(1);
    index.apply(agentDown('s1', 'ag2'));
    expect(index.room(PROJECT, 's1')).toBeUndefined();
    index.apply(agentDown('s1', 'ag2'));
    expect([...index.allRooms()]).toEqual([]);
  });

  it('node:down removes that node’s tabs and agents only', () => {
    const { index, changes } = recorded();
    index.apply(tabUp('s1', makeTab('a1', { nodeId: 'A' }), makeData({})));
    index.apply(tabUp('s1', makeTab('b1', { nodeId: 'B', connectedAt: 2 })));
    index.apply(tabUp('s2', makeTab('a2', { nodeId: 'A' }), makeData({})));
    index.apply(tabUp('s3', makeTab('b3', { nodeId: 'B' }), makeData({}), OTHER_PROJECT));
    index.apply(agentUp('s4', makeAgent('agA', { nodeId: 'A' })));
    index.apply(agentUp('s3', makeAgent('agA3', { nodeId: 'A' }), OTHER_PROJECT));
    changes.length = 0;
    index.apply({ type: 'node:down', nodeId: 'A' });
    expect(index.session(PROJECT, 's1')?.tabIds).toEqual(['b1']);
    expect(index.session(PROJECT, 's2')).toBeUndefined();
    expect(index.room(PROJECT, 's2')).toBeUndefined();
    expect(index.room(PROJECT, 's4')).toBeUndefined();
    expect(index.session(OTHER_PROJECT, 's3')).toBeDefined();
    expect(index.room(OTHER_PROJECT, 's3')?.agents.size).toBe(0);
    expect(index.size).toBe(2);
    expect(changes.map((c) => [c.sessionId, c.before !== undefined, c.after !== undefined]).sort()).toEqual([
      ['s1', true, true],
      ['s2', true, false],
    ]);
  });

  it('reports changes in order with the right before/after', () => {
    const { index, changes } = recorded();
    index.apply(tabUp('s1', makeTab('t1'), makeData({ userID: 'a' }, 1)));
    index.apply(dataOp('s1', makeData({ userID: 'b' }, 2)));
    index.apply(tabUp('s2', makeTab('x'), makeData({ userID: 'z' })));
    index.apply(dataOp('s1', makeData({ userID: 'c' }, 3)));
    index.apply(tabDown('s1', 't1'));
    expect(changes.map((c) => [c.sessionId, c.before?.userID, c.after?.userID])).toEqual([
      ['s1', undefined, 'a'],
      ['s1', 'a', 'b'],
      ['s2', undefined, 'z'],
      ['s1', 'b', 'c'],
      ['s1', 'c', undefined],
    ]);
    // Each event's `before` is the previous event's `after` for that session.
    expect(changes[1]?.before).toBe(changes[0]?.after);
    expect(changes[3]?.before).toBe(changes[1]?.after);
  });

  it('reports nothing when an op changes no view (the same tab state again)', () => {
    const { index, changes } = recorded();
    const tab = makeTab('t1');
    index.apply(tabUp('s1', tab, makeData({ userID: 'a' })));
    const version = index.projectVersion(PROJECT);
    index.apply(tabUp('s1', { ...tab }));
    index.apply(tabUp('s1', { ...tab }, makeData({ userID: 'a' })));
    expect(changes).toHaveLength(1);
    expect(index.projectVersion(PROJECT)).toBe(version);
  });

  it('an unsubscribed listener hears nothing more', () => {
    const index = new SessionIndex();
    const heard: string[] = [];
    const off = index.onChange((c) => heard.push(c.sessionId));
    addSession(index, 's1', {});
    off();
    addSession(index, 's2', {});
    expect(heard).toEqual(['s1']);
  });
});

describe('SessionIndex: secondary indexes stay consistent', () => {
  it('search with is finds the new userID, not the old one', () => {
    const index = new SessionIndex();
    addSession(index, 's1', { userID: 'Alice' });
    addSession(index, 's2', { userID: 'bob' });
    expect(ids(index.search(PROJECT, query({ filters: [{ type: 'USERID', value: ['alice'], operator: 'is' }] })))).toEqual(['s1']);
    index.apply(dataOp('s1', makeData({ userID: 'Carol' }, 2)));
    expect(ids(index.search(PROJECT, query({ filters: [{ type: 'USERID', value: ['alice'], operator: 'is' }] })))).toEqual([]);
    expect(ids(index.search(PROJECT, query({ filters: [{ type: 'USERID', value: ['carol'], operator: 'is' }] })))).toEqual(['s1']);
    expect(ids(index.search(PROJECT, query({ filters: [{ type: 'USERID', value: ['CAROL', 'bob'], operator: 'is' }] }))).sort()).toEqual(['s1', 's2']);
    index.apply(dataOp('s1', makeData({ userID: '' }, 3)));
    expect(ids(index.search(PROJECT, query({ filters: [{ type: 'USERID', value: ['carol'], operator: 'is' }] })))).toEqual([]);
    expect(ids(index.search(PROJECT, query({ filters: [{ type: 'USERID', value: [] }] })))).toEqual(['s2']);
  });

  it('search with is on metadata follows metadata changes, removals included', () => {
    const index = new SessionIndex();
    addSession(index, 's1', { metadata: { plan: 'trial', team: 'x' } });
    const plan = (v: string) => ids(index.search(PROJECT, query({ filters: [{ type: 'METADATA', source: 'plan', value: [v], operator: 'is' }] })));
    expect(plan('trial')).toEqual(['s1']);
    index.apply(dataOp('s1', makeData({ metadata: { plan: 'Paid', team: 'x' } }, 2)));
    expect(plan('trial')).toEqual([]);
    expect(plan('paid')).toEqual(['s1']);
    index.apply(dataOp('s1', makeData({ metadata: { team: 'x' } }, 3)));
    expect(plan('paid')).toEqual([]);
    expect(ids(index.search(PROJECT, query({ filters: [{ type: 'METADATA', source: 'team', value: ['X'], operator: 'is' }] })))).toEqual(['s1']);
  });

  it('indexes other attributes too (country, browser, os, device type) and drops ended sessions', () => {
    const index = new SessionIndex();
    addSession(index, 's1', { userCountry: 'FR', userBrowser: 'Chrome', userOs: 'Linux', userDeviceType: 'mobile' });
    const find = (type: string, v: string) => ids(index.search(PROJECT, query({ filters: [{ type, value: [v], operator: 'is' }] })));
    expect(find('USERCOUNTRY', 'fr')).toEqual(['s1']);
    expect(find('USERBROWSER', 'chrome')).toEqual(['s1']);
    expect(find('USEROS', 'linux')).toEqual(['s1']);
    expect(find('PLATFORM', 'mobile')).toEqual(['s1']);
    index.apply(dataOp('s1', makeData({ userCountry: 'DE', userBrowser: 'Firefox', userOs: 'Linux' }, 2)));
    expect(find('USERCOUNTRY', 'fr')).toEqual([]);
    expect(find('USERCOUNTRY', 'de')).toEqual(['s1']);
    expect(find('USERBROWSER', 'chrome')).toEqual([]);
    expect(find('PLATFORM', 'mobile')).toEqual([]);
    expect(find('PLATFORM', 'desktop')).toEqual(['s1']);
    index.apply(tabDown('s1', 's1-t'));
    expect(find('USERCOUNTRY', 'de')).toEqual([]);
    addSession(index, 's1', { userCountry: 'IT' });
    expect(find('USERCOUNTRY', 'de')).toEqual([]);
    expect(find('USERCOUNTRY', 'it')).toEqual(['s1']);
  });

  it('several is filters on indexed attributes must all hold', () => {
    const index = new SessionIndex();
    addSession(index, 's1', { userCountry: 'FR', userBrowser: 'Chrome' });
    addSession(index, 's2', { userCountry: 'FR', userBrowser: 'Firefox' });
    addSession(index, 's3', { userCountry: 'DE', userBrowser: 'Chrome' });
    const page = index.search(
      PROJECT,
      query({ filters: [{ type: 'USERCOUNTRY', value: ['fr'], operator: 'is' }, { type: 'USERBROWSER', value: ['chrome'], operator: 'is' }] }),
    );
    expect(ids(page)).toEqual(['s1']);
    expect(page.total).toBe(1);
  });
});

describe('SessionIndex.search', () => {
  function fixture(): SessionIndex {
    const index = new SessionIndex();
    addSession(index, 'a', { timestamp: 300, userID: 'bob', userCountry: 'FR' });
    addSession(index, 'b', { timestamp: 100, userID: 'Alice', userCountry: 'FR' });
    addSession(index, 'c', { timestamp: 500, userID: '', userCountry: 'DE' });
    addSession(index, 'd', { timestamp: 200, userID: 'carol', userCountry: 'FR' });
    addSession(index, 'e', { timestamp: 400, userID: 'alice2', userCountry: 'FR' });
    return index;
  }

  it('defaults to newest first and counts everything', () => {
    const page = fixture().search(PROJECT, query({}));
    expect(ids(page)).toEqual(['c', 'e', 'a', 'd', 'b']);
    expect(page.total).toBe(5);
    expect(page.rooms.every((r) => r.view !== undefined)).toBe(true);
  });

  it('sorts by timestamp ascending', () => {
    expect(ids(fixture().search(PROJECT, query({ order: 'asc' })))).toEqual(['b', 'd', 'a', 'e', 'c']);
  });

  it('sorts by a text attribute in both orders, case-insensitively, missing last', () => {
    const index = fixture();
    expect(ids(index.search(PROJECT, query({ sort: 'userID', order: 'ASC' })))).toEqual(['b', 'e', 'a', 'd', 'c']);
    expect(ids(index.search(PROJECT, query({ sort: 'userID', order: 'DESC' })))).toEqual(['d', 'a', 'e', 'b', 'c']);
  });

  it('total counts all matches, not the page', () => {
    const page = fixture().search(PROJECT, query({ filters: [{ type: 'USERCOUNTRY', value: ['fr'], operator: 'is' }], limit: 2 }));
    expect(page.total).toBe(4);
    expect(ids(page)).toEqual(['e', 'a']);
  });

  it('pages: limit 1, the last partial page, past the end', () => {
    const index = fixture();
    const page = (p: number, limit: number) => index.search(PROJECT, query({ order: 'ASC', page: p, limit }));
    expect(ids(page(1, 1))).toEqual(['b']);
    expect(ids(page(3, 1))).toEqual(['a']);
    expect(ids(page(5, 1))).toEqual(['c']);
    expect(ids(page(1, 2))).toEqual(['b', 'd']);
    expect(ids(page(2, 2))).toEqual(['a', 'e']);
    expect(ids(page(3, 2))).toEqual(['c']);
    expect(page(3, 2).total).toBe(5);
    expect(ids(page(4, 2))).toEqual([]);
    expect(page(4, 2).total).toBe(5);
    expect(ids(page(6, 1))).toEqual([]);
    expect(page(100, 200).total).toBe(5);
    expect(ids(page(1, 5))).toEqual(['b', 'd', 'a', 'e', 'c']);
  });

  it('pages never overlap when sort keys tie', () => {
    const index = new SessionIndex();
    for (const id of ['5', '3', '1', '4', '2']) addSession(index, id, { timestamp: 7 });
    const seen: string[] = [];
    for (let p = 1; p <= 3; p++) seen.push(...ids(index.search(PROJECT, query({ page: p, limit: 2 }))));
    expect(seen).toEqual(['1', '2', '3', '4', '5']);
  });

  it('an is filter with a value nobody has finds nothing', () => {
    const page = fixture().search(PROJECT, query({ filters: [{ type: 'USERID', value: ['nobody'], operator: 'is' }] }));
    expect(page).toEqual({ total: 0, rooms: [] });
  });

  it('keeps projects apart', () => {
    const index = fixture();
    addSession(index, 'a', { timestamp: 1, userID: 'other' }, OTHER_PROJECT);
    addSession(index, 'z', { timestamp: 2, userID: 'bob' }, OTHER_PROJECT);
    expect(ids(index.search(OTHER_PROJECT, query({})))).toEqual(['z', 'a']);
    expect(ids(index.search(PROJECT, query({ filters: [{ type: 'USERID', value: ['bob'], operator: 'is' }] })))).toEqual(['a']);
    expect(index.session(PROJECT, 'a')?.userID).toBe('bob');
    expect(index.session(OTHER_PROJECT, 'a')?.userID).toBe('other');
    expect(index.search('unknown-project', query({}))).toEqual({ total: 0, rooms: [] });
    expect(index.projectSize(PROJECT)).toBe(5);
    expect(index.projectSize(OTHER_PROJECT)).toBe(2);
    expect(index.size).toBe(7);
    index.apply(tabDown('a', 'a-t', 'sock-a-t', OTHER_PROJECT));
    expect(index.session(PROJECT, 'a')).toBeDefined();
    expect(index.projectSize(PROJECT)).toBe(5);
  });
});

describe('SessionIndex.projectVersion', () => {
  it('changes on every change and only in the changed project', () => {
    const index = new SessionIndex();
    expect(index.projectVersion(PROJECT)).toBe(0);
    const seen = new Set<number>([0]);
    const step = (op: Parameters<SessionIndex['apply']>[0]) => {
      const other = index.projectVersion(OTHER_PROJECT);
      index.apply(op);
      const v = index.projectVersion(PROJECT);
      expect(seen.has(v)).toBe(false);
      seen.add(v);
      expect(index.projectVersion(OTHER_PROJECT)).toBe(other);
    };
    addSession(index, 'o1', {}, OTHER_PROJECT);
    step(tabUp('s1', makeTab('t1'), makeData({ userID: 'a' })));
    step(tabUp('s1', makeTab('t2')));
    step(dataOp('s1', makeData({ userID: 'b' }, 2)));
    step(tabUp('s1', makeTab('t2', { pageTitle: 'new title' })));
    step(tabDown('s1', 't2'));
  });

  it('never repeats after a project empties and refills', () => {
    const index = new SessionIndex();
    const versions: number[] = [];
    for (let round = 0; round < 3; round++) {
      addSession(index, 's1', { userID: `u${round}` });
      versions.push(index.projectVersion(PROJECT));
      index.apply(tabDown('s1', 's1-t'));
      expect(index.projectSize(PROJECT)).toBe(0);
      // Another project changing in between must not make versions collide either.
      addSession(index, `o${round}`, {}, OTHER_PROJECT);
    }
    expect(new Set(versions).size).toBe(versions.length);
    expect(versions.every((v) => v > 0)).toBe(true);
  });
});

describe('SessionIndex.autocomplete', () => {
  function fixture(): SessionIndex {
    const index = new SessionIndex();
    addSession(index, 's1', { userID: 'OpenReplay', metadata: { plan: 'Trial' } });
    addSession(index, 's2', { userID: 'openreplay', metadata: { plan: 'trial' } });
    addSession(index, 's3', { userID: 'open-source', metadata: { plan: 'paid' } });
    addSession(index, 's4', { userID: 'closed', metadata: {} });
    addSession(index, 's5', { userID: '' });
    return index;
  }
  const userID = { attribute: 'userID', isMetadata: false };

  it('returns distinct values (case-insensitively) that contain q, case-insensitively', () => {
    const values = fixture().autocomplete(PROJECT, userID, 'OPE', 10);
    expect(values).toHaveLength(2);
    expect(values.map((v) => v.toLowerCase()).sort()).toEqual(['open-source', 'openreplay']);
    expect(values).toContain('open-source');
  });

  it('an empty q lists every non-empty value', () => {
    expect(fixture().autocomplete(PROJECT, userID, '', 10).map((v) => v.toLowerCase()).sort()).toEqual(['closed', 'open-source', 'openreplay']);
  });

  it('reads metadata keys', () => {
    const values = fixture().autocomplete(PROJECT, { attribute: 'plan', isMetadata: true }, '', 10);
    expect(values.map((v) => v.toLowerCase()).sort()).toEqual(['paid', 'trial']);
  });

  it('is limited', () => {
    const index = fixture();
    expect(index.autocomplete(PROJECT, userID, '', 2)).toHaveLength(2);
    expect(index.autocomplete(PROJECT, userID, '', 1)).toHaveLength(1);
    expect(index.autocomplete(PROJECT, userID, '', 0)).toEqual([]);
  });

  it('stays in its project and finds nothing for unknown projects', () => {
    const index = fixture();
    addSession(index, 'x', { userID: 'openOther' }, OTHER_PROJECT);
    expect(index.autocomplete(OTHER_PROJECT, userID, 'open', 10)).toEqual(['openOther']);
    expect(index.autocomplete('nope', userID, '', 10)).toEqual([]);
  });

  it('never returns prototype members as values', () => {
    const index = fixture();
    for (const attribute of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      expect(index.autocomplete(PROJECT, { attribute, isMetadata: true }, '', 10)).toEqual([]);
      expect(index.autocomplete(PROJECT, { attribute, isMetadata: false }, '', 10)).toEqual([]);
    }
  });

  it('skips values that are not text (objects, null)', () => {
    const index = new SessionIndex();
    addSession(index, 's1', { userCity: null, extra: { a: 1 } });
    expect(index.autocomplete(PROJECT, { attribute: 'userCity', isMetadata: false }, '', 10)).toEqual([]);
    expect(index.autocomplete(PROJECT, { attribute: 'extra', isMetadata: false }, '', 10)).toEqual([]);
    expect(index.autocomplete(PROJECT, { attribute: 'tabIds', isMetadata: false }, '', 10)).toEqual([]);
  });
});

describe('apply says what changed', () => {
  const NONE = { joins: [], leaves: [] };
  const move = (sessionId: string, tab: TabState, projectKey = PROJECT) => ({ projectKey, sessionId, tab });

  test('dataChanged only when the room holds other data afterwards', () => {
    const index = new SessionIndex();
    const d1 = makeData({ userID: 'u1' }, 1);
    expect(index.apply(tabUp('s1', makeTab('t1'), d1))).toMatchObject({ dataChanged: true });
    // The same op again (a replay), a tab field, an agent, older data: the data stays.
    expect(index.apply(tabUp('s1', makeTab('t1'), d1))).toMatchObject({ dataChanged: false });
    expect(index.apply(tabUp('s1', makeTab('t1', { pageTitle: 'Other' })))).toMatchObject({ dataChanged: false });
    expect(index.apply(agentUp('s1', makeAgent('a1')))).toMatchObject({ dataChanged: false });
    expect(index.apply(dataOp('s1', makeData({ userID: 'old' }, 1)))).toMatchObject({ dataChanged: false });
    expect(index.apply(dataOp('s1', makeData({ userID: 'u2' }, 2)))).toMatchObject({ dataChanged: true });
    expect(index.room(PROJECT, 's1')?.data?.fields).toEqual({ userID: 'u2' });
    // The last tab leaves: its data goes with it (the agent keeps the room).
    expect(index.apply(tabDown('s1', 't1'))).toMatchObject({ dataChanged: true });
    expect(index.apply({ type: 'node:down', nodeId: 'node-a' })).toMatchObject({ dataChanged: false });
  });

  test('the view appears, changes and ends, as the listeners hear it', () => {
    const { index, changes } = recorded();
    const t1 = makeTab('t1');
    const t2 = makeTab('t2');
    expect(index.apply(tabUp('s1', t1, makeData({ userID: 'u1' })))).toEqual({ dataChanged: true, view: 'appeared', joins: [move('s1', t1)], leaves: [] });
    expect(index.apply(tabUp('s1', t2))).toEqual({ dataChanged: false, view: 'changed', joins: [move('s1', t2)], leaves: [] });
    expect(index.apply(dataOp('s1', makeData({ userID: 'u2' }, 2)))).toEqual({ dataChanged: true, view: 'changed', ...NONE });
    expect(index.apply(tabDown('s1', 't1'))).toEqual({ dataChanged: false, view: 'changed', joins: [], leaves: [move('s1', t1)] });
    expect(index.apply(tabDown('s1', 't2'))).toEqual({ dataChanged: true, view: 'ended', joins: [], leaves: [move('s1', t2)] });
    // One listener event per view change reported, in the same order.
    expect(changes.map((c) => (c.before ? (c.after ? 'changed' : 'ended') : 'appeared'))).toEqual(['appeared', 'changed', 'changed', 'changed', 'ended']);
  });

  test('a tab without any data yet joins the room; no view appears', () => {
    const index = new SessionIndex();
    const t1 = makeTab('t1');
    expect(index.apply(tabUp('s1', t1))).toEqual({ dataChanged: false, view: 'none', joins: [move('s1', t1)], leaves: [] });
    expect(index.session(PROJECT, 's1')).toBeUndefined();
  });

  test('a tab taken over by a new socket leaves and joins; a tab whose fields change does neither', () => {
    const index = new SessionIndex();
    const old = makeTab('t1');
    index.apply(tabUp('s1', old, makeData({ userID: 'u1' })));
    const retitled = makeTab('t1', { pageTitle: 'Checkout' });
    expect(index.apply(tabUp('s1', retitled))).toEqual({ dataChanged: false, view: 'changed', ...NONE });
    const taken = makeTab('t1', { socketId: 'sock-new', nodeId: 'node-b' });
    expect(index.apply(tabUp('s1', taken))).toEqual({ dataChanged: false, view: 'changed', joins: [move('s1', taken)], leaves: [move('s1', retitled)] });
    // The old socket's late leave is stale: nothing changes.
    expect(index.apply(tabDown('s1', 't1', 'sock-t1'))).toEqual({ dataChanged: false, view: 'none', ...NONE });
  });

  test('ops that change nothing, and agents, return one shared frozen outcome', () => {
    const index = new SessionIndex();
    const t1 = makeTab('t1');
    const d1 = makeData({ userID: 'u1' });
    index.apply(tabUp('s1', t1, d1));
    const replay = index.apply(tabUp('s1', t1, d1));
    expect(replay).toEqual({ dataChanged: false, view: 'none', ...NONE });
    expect(Object.isFrozen(replay)).toBe(true);
    expect(Object.isFrozen(replay.joins)).toBe(true);
    // The same object for every op with that outcome: nothing allocated.
    expect(index.apply(agentUp('s1', makeAgent('a1')))).toBe(replay);
    expect(index.apply(agentDown('s1', 'a1'))).toBe(replay);
    expect(index.apply(tabDown('nope', 't1'))).toBe(replay);
    expect(index.apply(dataOp('s1', makeData({ userID: 'older' }, 0)))).toBe(replay);
    const update = index.apply(dataOp('s1', makeData({ userID: 'u2' }, 2)));
    expect(index.apply(dataOp('s1', makeData({ userID: 'u3' }, 3)))).toBe(update);
  });

  test('node:down leaves every tab the node held, in every room and project; the views are heard one by one', () => {
    const { index, changes } = recorded();
    const a1 = makeTab('a1');
    const a2 = makeTab('a2');
    const b1 = makeTab('b1', { nodeId: 'node-b' });
    index.apply(tabUp('s1', a1, makeData({ userID: 'u1' })));
    index.apply(tabUp('s1', b1));
    index.apply(tabUp('s2', a2, makeData({ userID: 'u2' }), OTHER_PROJECT));
    index.apply(agentUp('s3', makeAgent('x', { nodeId: 'node-a' })));
    changes.length = 0;
    const down = index.apply({ type: 'node:down', nodeId: 'node-a' });
    expect(down).toEqual({ dataChanged: false, view: 'none', joins: [], leaves: expect.arrayContaining([move('s1', a1), move('s2', a2, OTHER_PROJECT)]) });
    expect(down.leaves).toHaveLength(2);
    expect(changes.map((c) => [c.sessionId, Boolean(c.after)])).toEqual(expect.arrayContaining([['s1', true], ['s2', false]]));
    expect(index.room(PROJECT, 's3')).toBeUndefined();
    // A node with nothing left: the shared outcome.
    expect(index.apply({ type: 'node:down', nodeId: 'node-a' })).toEqual({ dataChanged: false, view: 'none', ...NONE });
  });
});
