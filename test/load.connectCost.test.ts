/**
 * `npm run bench:connect`: the arithmetic that turns a hub's --trace-gc lines into bytes allocated
 * and GC pause (pure; the probe itself is a benchmark and runs under the bench lock, not here).
 */
import { gcFromTrace } from '../load/connectCost';

const line = (kind: string, before: number, after: number, pauseMs: number, extra = ''): string =>
  `[123:0x5555]   1000 ms: ${kind}${extra} ${before} (${before + 2}) -> ${after} (${after + 3}) MB, ${pauseMs} / 0.00 ms  (average mu = 1.000, current mu = 1.000) allocation failure; `;

describe('connect cost probe: GC trace', () => {
  it('counts what was allocated between the forced GCs at both ends, whatever the GC kinds', () => {
    const trace = [
      line('Mark-Compact', 40.0, 30.0, 5.0, ' (reduce)'),
      'a log line of the hub in between',
      line('Scavenge', 46.0, 33.0, 2.5),
      line('Scavenge', 49.0, 35.0, 3.0),
      line('Mark-Compact', 41.5, 31.0, 12.0),
    ].join('\n');
    // (46 - 30) + (49 - 33) + (41.5 - 35) = 38.5 MB; pauses after the first: 2.5 + 3 + 12.
    expect(gcFromTrace(trace)).toEqual({ allocatedBytes: 38.5 * 1024 * 1024, pauseMs: 17.5, collections: 2 });
  });

  it('has nothing to say without two GCs', () => {
    expect(gcFromTrace(line('Scavenge', 10, 5, 1))).toBeUndefined();
    expect(gcFromTrace('no trace at all')).toBeUndefined();
  });
});
