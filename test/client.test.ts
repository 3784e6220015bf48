/**
 * The browser-safe client's own parts: its tiny emitter, and the connection states and events a
 * page draws from (against a real hub). Subscriptions, diffs and resume are in subscriptions.test.ts.
 */
import jwt from 'jsonwebtoken';
import type { Socket } from 'socket.io-client';
import { type ConnectionState, DashboardClient, Emitter } from '../src/client/index';
import type { Hub } from '../src/server';
import { REPO_ROOT } from './support/buildLock';
import { API_KEY, JWT_SECRET, projectKey, startTestHub } from './support/hub';
import { run } from './support/run';
import { connectTracker } from './support/live';
import { eventually } from './support/wait';

class Probe extends Emitter<{ ping: [n: number]; error: [e: Error] }> {
  fire<K extends 'ping' | 'error'>(event: K, ...args: K extends 'ping' ? [number] : [Error]): boolean {
    return (this.emit as (e: string, ...a: unknown[]) => boolean)(event, ...args);
  }
}

describe('Emitter', () => {
  test('on, once, off and the remover, in the order added', () => {
    const e = new Probe();
    const seen: string[] = [];
    const off = e.on('ping', (n) => seen.push(`a${n}`));
    e.once('ping', (n) => seen.push(`once${n}`));
    const b = (n: number) => seen.push(`b${n}`);
    e.on('ping', b);
    expect(e.fire('ping', 1)).toBe(true);
    off();
    e.off('ping', b);
    expect(e.fire('ping', 2)).toBe(false);
    expect(seen).toEqual(['a1', 'once1', 'b1']);
    expect(e.listenerCount('ping')).toBe(0);
  });

  test('an error with no listener is dropped, not thrown', () => {
    expect(new Probe().fire('error', new Error('nobody listens'))).toBe(false);
  });

  test('a throwing listener does not stop the others; its error is rethrown on its own turn', async () => {
    // In its own process: the rethrow is an uncaught exception, as a page or Node shows it.
    const script = `
      const { Emitter } = require('./src/client/emitter');
      class P extends Emitter { fire(n) { return this.emit('ping', n); } }
      const p = new P();
      p.on('ping', () => { throw new Error('listener bug'); });
      p.on('ping', (n) => console.log('second listener got', n));
      p.fire(7);
      console.log('emit returned');`;
    const result = await run(process.execPath, ['--import', 'tsx', '-e', script], { cwd: REPO_ROOT, timeoutMs: 30_000 });
    expect(result.stdout).toBe('second listener got 7\nemit returned\n');
    expect(result.stderr).toContain('listener bug');
    expect(result.code).not.toBe(0);
  });
});

describe('DashboardClient states', () => {
  let hub: Hub;
  const open: DashboardClient[] = [];
  const trackers: Socket[] = [];
  const client = (token: string | (() => string) = API_KEY) => {
    const c = new DashboardClient({ url: hub.url, token, reconnectionDelayMs: 100, reconnectionDelayMaxMs: 200 });
    open.push(c);
    return c;
  };
  beforeAll(async () => {
    hub = await startTestHub();
  });
  afterAll(async () => {
    for (const c of open) c.close();
    for (const t of trackers) t.close();
    await hub?.shutdown();
  });

  test('connecting, then live; close() is closed', async () => {
    const c = client();
    const states: ConnectionState[] = [];
    c.on('state', (s) => states.push(s));
    expect(c.state).toBe('connecting');
    await c.connected();
    c.close();
    expect(states).toEqual(['live', 'closed']);
    await expect(c.connected()).rejects.toThrow(/closed/);
  });

  test('a refused token: state refused with the reason, connected() and subscribe() reject at once', async () => {
    const c = client('not-a-key-at-all');
    const refused = new Promise<Error | undefined>((resolve) => c.on('state', (s, err) => s === 'refused' && resolve(err)));
    await expect(c.connected()).rejects.toThrow(/Authentication error/);
    expect((await refused)?.message).toMatch(/Authentication error/);
    await expect(c.subscribe({ projectKey: projectKey('refused') })).rejects.toThrow(/refused/);
  });

  test('a cut connection: reconnecting, then live, and the subscription says it resumed', async () => {
    const project = projectKey('states');
    trackers.push((await connectTracker(hub, { minimalInfo: true, projectKey: project, sessionId: 's1', tabId: 't1', info: { userID: 'a' } })).socket);
    const c = client();
    const sub = await c.subscribe({ projectKey: project });
    const states: ConnectionState[] = [];
    c.on('state', (s) => states.push(s));
    let resumed = 0;
    sub.on('resumed', () => resumed++);
    c.socket.io.engine.close();
    await eventually(() => resumed === 1, () => `states ${states.join()}, resumed ${resumed}`);
    expect(states).toEqual(['reconnecting', 'live']);
    expect(sub.view.list().map((s) => s.userID)).toEqual(['a']);
  });

  test('a token provider: an expired JWT is replaced by a fresh one, and the subscription resumes', async () => {
    const project = projectKey('refresh');
    let minted = 0;
    // Each token lives 1 s (exp is in whole seconds, so 1-2 s): the hub ends the socket at exp.
    const c = client(() => {
      minted++;
      return jwt.sign({ projectKey: project, exp: Math.floor(Date.now() / 1000) + 1 }, JWT_SECRET, { algorithm: 'HS256' });
    });
    const sub = await c.subscribe({ projectKey: project });
    let resumed = 0;
    sub.on('resumed', () => resumed++);
    sub.on('resync', () => resumed++);
    await eventually(() => minted >= 2 && resumed >= 1 && c.state === 'live', () => `minted ${minted}, resumed ${resumed}, ${c.state}`, 6000);
    // Still live: a session that connects now reaches the view.
    trackers.push((await connectTracker(hub, { minimalInfo: true, projectKey: project, sessionId: 'f1', tabId: 't1', info: { userID: 'fresh' } })).socket);
    await eventually(() => sub.view.list().some((s) => s.userID === 'fresh'));
  });

  test('a plain token that expires is final: the client is closed', async () => {
    const project = projectKey('expired');
    const c = client(jwt.sign({ projectKey: project, exp: Math.floor(Date.now() / 1000) + 1 }, JWT_SECRET, { algorithm: 'HS256' }));
    await c.subscribe({ projectKey: project });
    await eventually(() => c.state === 'closed', () => c.state, 4000);
  });

  test('a subscription taken over by another connection of the same credential: revoked, and no longer resumed', async () => {
    const project = projectKey('revoked');
    const holder = client();
    const sub = await holder.subscribe({ projectKey: project });
    const revoked = new Promise<Error>((resolve) => sub.on('revoked', resolve));
    const heir = client();
    await heir.connected();
    const ack = (await heir.socket.timeout(5000).emitWithAck('subscribe', { projectKey: project, resume: { subscriptionId: sub.subscriptionId, seq: sub.view.seq } })) as { ok: boolean; subscriptionId?: string };
    expect(ack).toMatchObject({ ok: true, subscriptionId: sub.subscriptionId });
    expect(await revoked).toMatchObject({ code: 'SUBSCRIPTION_TAKEN_OVER' });
    // A reconnect of the old holder must not take the subscription back.
    let resumes = 0;
    sub.on('resumed', () => resumes++);
    sub.on('resync', () => resumes++);
    holder.socket.io.engine.close();
    await eventually(() => holder.state === 'live');
    trackers.push((await connectTracker(hub, { minimalInfo: true, projectKey: project, sessionId: 'r1', tabId: 't1' })).socket);
    await eventually(() => hub.ctx.index.room(project, 'r1') !== undefined);
    expect(resumes).toBe(0);
    expect(sub.stats.resumes).toBe(0);
  });
});
