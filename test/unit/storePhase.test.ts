/** The Redis store's phase machine (src/cluster/storePhase.ts): every phase x event, and what /ready says in each phase. */
import { type PhaseEvent, type StorePhase, hasJoined, isClosing, nextPhase, phaseStatus } from '../../src/cluster/storePhase';

const PHASES: StorePhase[] = ['joining', 'live', 'resyncing', 'stalled', 'leaving', 'closed'];
const EVENTS: PhaseEvent[] = ['loaded', 'resyncNeeded', 'stallSeen', 'stallOver', 'close', 'left'];

/** The whole machine: the next phase, or `-` where the event is refused (the phase stays). */
const TABLE: Record<StorePhase, Record<PhaseEvent, StorePhase | '-'>> = {
  joining: { loaded: 'live', resyncNeeded: 'joining', stallSeen: 'joining', stallOver: 'joining', close: 'closed', left: '-' },
  live: { loaded: '-', resyncNeeded: 'resyncing', stallSeen: 'stalled', stallOver: 'resyncing', close: 'leaving', left: '-' },
  resyncing: { loaded: 'live', resyncNeeded: 'resyncing', stallSeen: 'stalled', stallOver: 'resyncing', close: 'leaving', left: '-' },
  stalled: { loaded: 'stalled', resyncNeeded: 'stalled', stallSeen: '-', stallOver: 'resyncing', close: 'leaving', left: '-' },
  leaving: { loaded: '-', resyncNeeded: '-', stallSeen: '-', stallOver: '-', close: '-', left: 'closed' },
  closed: { loaded: '-', resyncNeeded: '-', stallSeen: '-', stallOver: '-', close: '-', left: '-' },
};

describe('nextPhase', () => {
  const cases = PHASES.flatMap((phase) => EVENTS.map((event) => [phase, event, TABLE[phase][event]] as const));

  test.each(cases)('%s + %s -> %s', (phase, event, expected) => {
    const step = nextPhase(phase, event);
    if (expected === '-') {
      expect(step).toEqual({ refused: expect.any(String) });
    } else {
      expect(step).toEqual({ phase: expected });
    }
  });

  test('a node joins, loses Redis, stalls, recovers and leaves: the path its events take', () => {
    const events: PhaseEvent[] = ['resyncNeeded', 'loaded', 'resyncNeeded', 'stallSeen', 'loaded', 'stallOver', 'loaded', 'close', 'left'];
    const path: StorePhase[] = [];
    let phase: StorePhase = 'joining';
    for (const event of events) {
      const step = nextPhase(phase, event);
      if ('phase' in step) phase = step.phase;
      path.push(phase);
    }
    expect(path).toEqual(['joining', 'live', 'resyncing', 'stalled', 'stalled', 'resyncing', 'live', 'leaving', 'closed']);
  });

  test('once closing, nothing brings the store back', () => {
    for (const phase of ['leaving', 'closed'] as const) {
      for (const event of EVENTS) {
        const step = nextPhase(phase, event);
        if ('phase' in step) expect(isClosing(step.phase)).toBe(true);
      }
    }
  });
});

describe('phaseStatus: what /ready answers', () => {
  const up = { connected: true, stalledForMs: 0 };
  const down = { connected: false, stalledForMs: 0 };

  test('joining: not ready, and says whether Redis answers', () => {
    expect(phaseStatus('joining', up)).toEqual({ ready: false, partial: true, reason: 'joining the cluster: loading the view' });
    expect(phaseStatus('joining', down)).toEqual({ ready: false, partial: true, reason: 'joining the cluster: Redis is unreachable' });
  });

  test('live: ready and whole while connected; partial when Redis is away', () => {
    expect(phaseStatus('live', up)).toEqual({ ready: true, partial: false });
    expect(phaseStatus('live', down)).toMatchObject({ ready: true, partial: true, reason: expect.stringMatching(/unreachable/) });
  });

  test('resyncing and stalled: ready but partial, with the reason', () => {
    expect(phaseStatus('resyncing', up)).toEqual({ ready: true, partial: true, reason: 'resynchronising the cluster view' });
    expect(phaseStatus('resyncing', down).reason).toMatch(/unreachable/);
    expect(phaseStatus('stalled', { connected: true, stalledForMs: 1234 }).reason).toMatch(/not answering \(for 1234 ms\)/);
    expect(phaseStatus('stalled', down).reason).toMatch(/unreachable/);
  });

  test('leaving serves until the sockets close; closed is not ready', () => {
    expect(phaseStatus('leaving', up)).toEqual({ ready: true, partial: true, reason: 'leaving the cluster' });
    expect(phaseStatus('closed', up)).toMatchObject({ ready: false, partial: true });
  });

  test('every phase but live is partial; ready exactly when the view was loaded', () => {
    for (const phase of PHASES) {
      const status = phaseStatus(phase, up);
      expect(status.partial).toBe(phase !== 'live');
      expect(status.ready).toBe(hasJoined(phase));
    }
  });
});
