/**
 * Micro-benchmark of one teardown step: a second bare `end()` on `ws`'s frame Receiver, which `ws`
 * does for every closing socket (on the TCP 'end', then again on 'close'). Without the hub's guard
 * (src/live/wsTeardown.ts) Node builds and drops an ERR_STREAM_ALREADY_FINISHED error with its
 * stack trace each time. `npx tsx load/teardown.ts [count]`: time per call, without and with the guard.
 */
import { createRequire } from 'node:module';
import { Writable } from 'node:stream';
import { endUnlessEnded } from '../src/live/wsTeardown';

const count = Number(process.argv[2] ?? 20_000);
const ws = createRequire(require.resolve('engine.io'))('ws') as { Receiver: new (options?: object) => Writable };

async function finishedReceivers(n: number): Promise<Writable[]> {
  const receivers = Array.from({ length: n }, () => new ws.Receiver({ isServer: true }));
  await Promise.all(receivers.map((r) => new Promise<void>((resolve) => { r.once('finish', () => resolve()); r.end(); })));
  return receivers;
}

async function measure(label: string, end: (r: Writable) => void): Promise<number> {
  const receivers = await finishedReceivers(count);
  const startedAt = process.hrtime.bigint();
  for (const r of receivers) end(r);
  const ns = Number(process.hrtime.bigint() - startedAt);
  process.stdout.write(`${label.padEnd(34)} ${(ns / count / 1000).toFixed(2)} µs per call, ${(ns / 1e6).toFixed(1)} ms for ${count}\n`);
  return ns;
}

async function main(): Promise<void> {
  for (let round = 1; round <= 3; round++) {
    await measure(`round ${round}: Writable.end (before)`, (r) => (Writable.prototype.end as (this: Writable) => Writable).call(r));
    await measure(`round ${round}: endUnlessEnded (after)`, (r) => endUnlessEnded.call(r));
  }
}

void main();
