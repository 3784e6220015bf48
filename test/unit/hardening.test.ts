/** The pure decisions behind issue 12's limits: quotas and eviction, resume parsing, tab bound, refusal codes. */
import { jwtCredential, readResume } from '../../src/live/dashboard';
import { refusalCode, tabFits } from '../../src/live/rooms';
import { makeRoom } from '../../src/subscriptions/registry';

describe('makeRoom', () => {
  const limits = { maxPerProject: 4, maxPerCredential: 2 };
  const detached = [{ id: 'a1', owner: 'a' }, { id: 'b1', owner: 'b' }, { id: 'a2', owner: 'a' }];

  test('under both quotas nothing gives way', () => {
    expect(makeRoom({ project: 3, owner: 1 }, limits, detached, 'a')).toBeUndefined();
  });
  test("the owner's quota full: its own oldest detached subscription gives way", () => {
    expect(makeRoom({ project: 3, owner: 2 }, limits, detached, 'b')).toEqual({ id: 'b1', owner: 'b' });
    expect(makeRoom({ project: 3, owner: 2 }, limits, [{ id: 'a1', owner: 'a' }], 'b')).toBe('credential-full');
  });
  test("the project full: the project's oldest detached subscription gives way, whoever owns it", () => {
    expect(makeRoom({ project: 4, owner: 0 }, limits, detached, 'c')).toEqual({ id: 'a1', owner: 'a' });
    expect(makeRoom({ project: 4, owner: 0 }, limits, [], 'c')).toBe('project-full');
  });
});

describe('readResume', () => {
  test('absent, well-formed, or a message', () => {
    expect(readResume(undefined)).toBeUndefined();
    expect(readResume({ subscriptionId: 'x', seq: 0 })).toEqual({ subscriptionId: 'x', seq: 0 });
    for (const bad of [null, 'x', [], { subscriptionId: 'x', seq: -1 }, { subscriptionId: 'x', seq: 0.5 }, { subscriptionId: '', seq: 1 }, { subscriptionId: 'x'.repeat(65), seq: 1 }, { subscriptionId: 'x', seq: 2 ** 60 }, { seq: 1 }]) {
      expect(typeof readResume(bad)).toBe('string');
    }
  });
});

describe('credentials, tabs and refusal codes', () => {
  test('a JWT credential is its project and subject', () => {
    expect(jwtCredential('p', { sub: 'u1' })).toBe('jwt:p:u1');
    expect(jwtCredential('p', { userId: 7 })).toBe('jwt:p:7');
    expect(jwtCredential('p', {})).toBe('jwt:p:');
  });
  test('a duplicate tab is never refused for the tab bound (it is decided later)', () => {
    expect(tabFits(3, false, 4)).toBe(true);
    expect(tabFits(4, false, 4)).toBe(false);
    expect(tabFits(4, true, 4)).toBe(true);
  });
  test('handshake reasons map to catalogue codes', () => {
    expect(refusalCode('authentication')).toBe('UNAUTHORIZED');
    expect(refusalCode('authorization')).toBe('FORBIDDEN');
    expect(refusalCode('sessionInfo')).toBe('BAD_REQUEST');
  });
});
