/** The budgeted job queue that keeps subscribe bursts from holding the event loop. */
import { TurnBudgetQueue } from '../../src/live/turnBudget';
import { pause } from '../support/wait';

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
    await pause(50);
    expect(order).toEqual(['a', 'other', 'b', 'c']);
    expect(queue.size).toBe(0);
  });

  it('runs cheap jobs together in one turn', async () => {
    const order: string[] = [];
    const queue = new TurnBudgetQueue(50, () => undefined);
    for (const name of ['a', 'b', 'c']) queue.push(() => order.push(name));
    setImmediate(() => order.push('other'));
    await pause(20);
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
    await pause(20);
    queue.push(() => done.push('later'));
    await pause(20);
    expect(errors).toEqual([new Error('boom')]);
    expect(done).toEqual(['after', 'later']);
  });
});
