/**
 * The bench's stall figures and its polls (load/lib/hub.ts `stallsBetween`, load/scenarios.ts
 * `POLLED_METRICS`): the polls of a storm ask /metrics for the few families they read, and the
 * phase's stalls come from the hub's histogram, which no poll in between can take away.
 */
import { type HubMetrics, scrapeMetrics, stallsBetween } from '../load/lib/hub';
import { POLLED_METRICS } from '../load/scenarios';
import { API_KEY, sharedTestHub } from './support/hub';
import { eventually } from './support/wait';

const bounds = [0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, Number.POSITIVE_INFINITY];
const buckets = (counts: number[]): HubMetrics['stallBuckets'] => bounds.map((le, i) => [le, counts[i] ?? 0]);

describe("the bench's stall figures between two scrapes", () => {
  it('counts the stalls, those over 100 and 150 ms, and the bound the longest is under', () => {
    const before = buckets([1, 2, 2, 2, 2, 2, 2, 2, 2, 2]);
    const after = buckets([4, 6, 7, 8, 9, 9, 9, 9, 9, 9]);
    expect(stallsBetween(before, after)).toEqual({ count: 7, over100ms: 2, over150ms: 1, longestAtMostMs: 250 });
    expect(stallsBetween(before, before)).toEqual({ count: 0, over100ms: 0, over150ms: 0, longestAtMostMs: null });
    expect(stallsBetween(before, buckets([1, 2, 2, 2, 2, 2, 2, 2, 2, 3]))?.longestAtMostMs).toBe(Number.POSITIVE_INFINITY);
    expect(stallsBetween([], after)).toBeNull();
  });

  describe('against a real hub', () => {
    const hub = sharedTestHub();

    it('a poll gets only the polled families', async () => {
      const poll = await scrapeMetrics(hub().url, API_KEY, POLLED_METRICS);
      expect(poll?.hub['hub_connections{role="session"}']).toBe(0);
      expect(poll?.hub.hub_live_sessions).toBe(0);
      expect(poll?.hub.hub_event_loop_stall_max_seconds).toBeDefined();
      expect(Object.keys(poll?.hub ?? {}).every((key) => POLLED_METRICS.some((name) => key.startsWith(name)))).toBe(true);
      expect(poll?.cpuSeconds).toBeUndefined();
      expect(poll?.stallBuckets).toEqual([]);
    });

    it('a stall that a poll has read (and reset) still counts between the phase’s two full scrapes', async () => {
      const before = await scrapeMetrics(hub().url, API_KEY);
      // The hub runs in this process: holding this loop holds the hub's.
      const until = performance.now() + 170;
      while (performance.now() < until) {
        // a stall of 170 ms
      }
      let polled = 0;
      await eventually(
        async () => {
          polled = Math.max(polled, (await scrapeMetrics(hub().url, API_KEY, POLLED_METRICS))?.hub.hub_event_loop_stall_max_seconds ?? 0);
          return polled >= 0.15;
        },
        () => `the poll saw a stall of ${polled} s`,
      );
      const after = await scrapeMetrics(hub().url, API_KEY);
      // The gauge was taken by the poll; the histogram was not.
      expect(after?.loopStallMaxSeconds).toBeLessThan(0.15);
      const stalls = stallsBetween(before?.stallBuckets ?? [], after?.stallBuckets ?? []);
      expect(stalls?.over150ms).toBeGreaterThanOrEqual(1);
      expect(stalls?.longestAtMostMs).toBeGreaterThanOrEqual(250);
    });
  });
});
