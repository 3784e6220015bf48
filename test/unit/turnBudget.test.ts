/** The budgeted job queue that keeps subscribe bursts from holding the event loop. */
import { Lane, TurnBudgetQueue } from '../../src/turnBudget';
import { eventually } from '../support/wait';

/** Until `list` has `n` entries: the order is what these tests check, not how long it took. */
const filled = (list: unknown[], n: number) => eventually(() => list.length >= n, () => JSON.stringify(list));

function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // spin: a job that takes its time
  }
}

describe('TurnBudgetQueue', () => {
  it('runs jobs in order and yields to other callbacks once a turn has used its budget', async () => {
    const order: string[] = [];
    const queue = new TurnBudgetQueue(1, () => undefined);
    for (const name of ['a', 'b', 'c']) {
      queue.push(() => {
        busy(3);
        order.push(name);
      });
    }
    setImmediate(() => order.push('other'));
    await filled(order, 4);
    expect(order).toEqual(['a', 'other', 'b', 'c']);
    expect(queue.size).toBe(0);
    // What the loop-stall trace reads: three jobs over (at least) two turns, and their time.
    await eventually(() => queue.stats.busyMs >= 9, () => JSON.stringify(queue.stats));
    expect(queue.stats.jobs).toBe(3);
    expect(queue.stats.turns).toBeGreaterThanOrEqual(2);
  });

  it('runs cheap jobs together in one turn', async () => {
    const order: string[] = [];
    const queue = new TurnBudgetQueue(50, () => undefined);
    for (const name of ['a', 'b', 'c']) queue.push(() => order.push(name));
    setImmediate(() => order.push('other'));
    await filled(order, 4);
    expect(order).toEqual(['a', 'b', 'c', 'other']);
  });

  it('reports a failing job and goes on with the next; accepts jobs again once drained', async () => {
    const errors: unknown[] = [];
    const done: string[] = [];
    const queue = new TurnBudgetQueue(5, (error) => errors.push(error));
    queue.push(() => {
      throw new Error('boom');
    });
    queue.push(() => done.push('after'));
    await filled(done, 1);
    queue.push(() => done.push('later'));
    await filled(done, 2);
    expect(errors).toEqual([new Error('boom')]);
    expect(done).toEqual(['after', 'later']);
  });
});

describe('TurnBudgetQueue lanes and cost', () => {
  it('runs urgent jobs before every job pushed the usual way, each lane in order', async () => {
    const order: string[] = [];
    const queue = new TurnBudgetQueue(50, () => undefined);
    queue.push(() => order.push('a'));
    queue.push(() => order.push('b'));
    queue.pushUrgent(() => order.push('x'));
    queue.pushUrgent(() => order.push('y'));
    expect(queue.size).toBe(4);
    await filled(order, 4);
    expect(order).toEqual(['x', 'y', 'a', 'b']);
    expect(queue.size).toBe(0);
  });

  it('counts the ticks a job leaves behind in its cost, and runs fewer such jobs per turn', async () => {
    const order: string[] = [];
    const queue = new TurnBudgetQueue(4, () => undefined);
    // Each job returns at once but leaves 3 ms of work in a tick: the turn's clock alone would run them all.
    const leavesWork = (name: string) => () => {
      order.push(name);
      process.nextTick(() => busy(3));
    };
    queue.push(leavesWork('warm-up'));
    await filled(order, 1);
    // One more loop iteration: the warm-up turn's cost is measured after its ticks.
    await new Promise((resolve) => setImmediate(resolve));
    for (const name of ['a', 'b', 'c', 'd', 'e', 'f']) queue.push(leavesWork(name));
    setImmediate(() => order.push('other'));
    await filled(order, 8);
    // The first turn ran at most budget / cost (one) job, then other I/O-phase callbacks got their turn.
    expect(order.indexOf('other')).toBeGreaterThan(order.indexOf('warm-up'));
    expect(order.indexOf('other')).toBeLessThan(order.indexOf('f'));
    expect(order.filter((n) => n !== 'other')).toEqual(['warm-up', 'a', 'b', 'c', 'd', 'e', 'f']);
  });
});

describe('Lane', () => {
  it('keeps its order and stays bounded under a backlog that never drains', () => {
    const lane = new Lane();
    const taken: number[] = [];
    let pushed = 0;
    for (; pushed < 100; pushed++) {
      const n = pushed;
      lane.push(() => taken.push(n));
    }
    // One in, one out, 20,000 times: the backlog of 100 is never worked off.
    for (let i = 0; i < 20_000; i++, pushed++) {
      const n = pushed;
      lane.push(() => taken.push(n));
      lane.take()?.();
      expect(lane.size).toBe(100);
    }
    expect(taken).toEqual(Array.from({ length: 20_000 }, (_, i) => i));
    expect(lane.held).toBeLessThan(2_200);
  });
});
