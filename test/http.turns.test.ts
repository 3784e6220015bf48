/**
 * Searches, lists and autocompletes answered in REST turns (REST_TURN_MS): many at once each get
 * the answer to their own question, errors included, as they do inline.
 */
import { API_KEYS_SPEC, KEY_ALL, PROJECT_A, type TestApp, addSession, call, errorOf, page, sessionsPath, startTestApp } from './support/http';
import { eventually, pause } from './support/wait';

describe.each([
  ['in turns of the default length', '5'],
  ['in turns of 1 ms (most requests queued)', '1'],
  ['inline', '0'],
])('REST %s', (_name, restTurnMs) => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ HUB_API_KEYS: API_KEYS_SPEC, REST_TURN_MS: restTurnMs });
    for (let i = 0; i < 60; i++) addSession(app.index, PROJECT_A, `${5000 + i}`, { userID: `user-${i % 6}`, metadata: { plan: i % 2 === 0 ? 'trial' : 'paid' } });
  });
  afterAll(() => app.close());

  test('40 concurrent requests of every kind each get their own answer', async () => {
    const requests = Array.from({ length: 40 }, (_, i) => {
      const user = `user-${i % 6}`;
      switch (i % 4) {
        case 0:
          return call(app.url, sessionsPath(PROJECT_A), { body: { filters: [{ type: 'USERID', value: [user], operator: 'is' }], limit: 50 } }).then((r) => ({ i, user, r }));
        case 1:
          return call(app.url, sessionsPath(PROJECT_A, `?userId=${user}`), { key: KEY_ALL }).then((r) => ({ i, user, r }));
        case 2:
          return call(app.url, sessionsPath(PROJECT_A), { body: { filters: [{ type: 'NOPE', value: [user] }] } }).then((r) => ({ i, user, r }));
        default:
          return call(app.url, `/api/v1/${PROJECT_A}/assist/autocomplete?type=USERID&q=${user}`).then((r) => ({ i, user, r }));
      }
    });
    for (const { i, user, r } of await Promise.all(requests)) {
      if (i % 4 === 2) {
        expect(r.status).toBe(400);
        expect(errorOf(r).code).toBe('INVALID_FILTER');
      } else if (i % 4 === 3) {
        expect(r.status).toBe(200);
        expect(r.json).toEqual({ data: [{ type: 'USERID', value: user }] });
      } else {
        expect(r.status).toBe(200);
        const { total, sessions } = page(r);
        expect(total).toBe(10);
        expect(sessions.every((s) => s.userID === user)).toBe(true);
      }
    }
  });
});

describe('REST turns and clients that leave', () => {
  test('a search whose client went away while it waited for its turn is not run', async () => {
    const app = await startTestApp({ HUB_API_KEYS: API_KEYS_SPEC, REST_TURN_MS: '1' });
    try {
      addSession(app.index, PROJECT_A, '6000', { userID: 'gone' });
      const turns = app.ctx.restTurns;
      if (!turns) throw new Error('REST turns are off');
      // Count the index's searches (the real index, observed, not replaced).
      let searches = 0;
      const search = app.index.search.bind(app.index);
      app.index.search = (...args) => {
        searches++;
        return search(...args);
      };
      // Urgent work that keeps coming, one job per turn, holds the search in its lane while I/O still runs.
      let spinning = true;
      const spin = (): void => {
        busy(2);
        if (spinning) turns.pushUrgent(spin);
      };
      turns.pushUrgent(spin);
      const controller = new AbortController();
      const request = fetch(`${app.url}${sessionsPath(PROJECT_A)}`, {
        method: 'POST',
        headers: { authorization: KEY_ALL, 'content-type': 'application/json' },
        body: JSON.stringify({ filters: [{ type: 'USERID', value: ['gone'], operator: 'is' }] }),
        signal: controller.signal,
      }).catch(() => 'aborted');
      await eventually(() => turns.size === 2, () => `queued: ${turns.size}`);
      controller.abort();
      expect(await request).toBe('aborted');
      // The hub reads the client's close between the turns.
      await pause(100);
      spinning = false;
      await eventually(() => turns.size === 0, () => `queued: ${turns.size}`);
      expect(searches).toBe(0);
    } finally {
      await app.close();
    }
  });
});

function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // a job that takes its time
  }
}
