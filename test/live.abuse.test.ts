/** Hostile payloads cost the sender its event, never the process or another session. */
import type { Hub } from '../src/server';
import { projectKey, startTestHub } from './support/hub';
import { connectTracker } from './support/live';
import { eventually } from './support/wait';

describe('hostile tracker payloads', () => {
  let hub: Hub;
  beforeAll(async () => {
    hub = await startTestHub();
  });
  afterAll(async () => {
    await hub.shutdown();
  });

  test('a payload nested too deep to re-encode is dropped; the hub and other tabs keep working', async () => {
    const project = projectKey('abuse');
    const attacker = (await connectTracker(hub, { minimalInfo: true, projectKey: project, sessionId: 'evil', tabId: 't1' })).socket;
    const peer = (await connectTracker(hub, { minimalInfo: true, projectKey: project, sessionId: 'evil', tabId: 't2' })).socket;
    const bystander = (await connectTracker(hub, { minimalInfo: true, projectKey: project, sessionId: 'good', tabId: 't1' })).socket;
    try {
      const depth = 200_000;
      const nested = `${'['.repeat(depth)}${']'.repeat(depth)}`;
      // Sent as raw Socket.IO event packets: the client's own encoder would overflow before sending.
      const engine = attacker.io.engine as unknown as { send(packet: string): void };
      engine.send(`2["messages",${nested}]`);
      engine.send(`2["UPDATE_SESSION",{"meta":{"tabId":"t1"},"data":{"x":${nested}}}]`);
      const count = async (metric: { get(): Promise<{ values: { value: number }[] }> }) => (await metric.get()).values[0]?.value ?? 0;
      await eventually(
        async () => (await count(hub.ctx.metrics.eventsDropped)) === 1 && (await count(hub.ctx.metrics.sessionUpdatesRejected)) === 1,
        () => 'the relayed event was not dropped, or the update not refused',
      );
      // The session was not changed by the refused update, and the process still relays.
      expect(hub.ctx.index.session(project, 'evil')?.x).toBeUndefined();
      const got = new Promise((resolve) => peer.once('messages', resolve));
      attacker.emit('messages', { meta: { tabId: 't1' }, data: [1, 2, 3] });
      await expect(got).resolves.toEqual({ meta: { tabId: 't1' }, data: [1, 2, 3] });
      expect(bystander.connected).toBe(true);
      expect(hub.ctx.index.session(project, 'good')).toBeDefined();
    } finally {
      attacker.close();
      peer.close();
      bystander.close();
    }
  });
});
