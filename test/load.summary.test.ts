/**
 * `npm run bench:summary`: several runs of a scenario against issue 17's targets. Pure functions
 * over result JSON shaped as the bench writes it.
 */
import { TARGETS, median, scenarioOf, summarize } from '../load/summary';

const stormRun = (exactAfterMs: number, stormStallMs: number, dropStallMs: number, failed = 0) => ({
  storm: { exactAfterMs, longestStallMs: stormStallMs, failed, refusedByHub: 0, hubCpuMsPerConnect: 0.5 },
  massDisconnect: { longestStallMs: dropStallMs },
});

describe('bench summary', () => {
  it('gives each target every run, the median and how many runs met it', () => {
    const rows = summarize(TARGETS.storm, [stormRun(9_000, 120, 90), stormRun(12_000, 400, 300, 2), stormRun(10_500, 140, 99)]);
    const row = (figure: string) => rows.find((r) => r.figure.startsWith(figure));
    expect(row('storm: count exact')).toMatchObject({ values: [9_000, 12_000, 10_500], median: 10_500, met: 1, measured: 3 });
    expect(row('storm: longest stall')).toMatchObject({ median: 140, met: 2 });
    expect(row('mass disconnect')).toMatchObject({ met: 2 });
    expect(row('storm: failed + refused')).toMatchObject({ values: [0, 2, 0], met: 2 });
  });

  it('leaves out a figure a run does not have, rather than counting it as met', () => {
    const [search, relay] = summarize(TARGETS.mixed, [{ search: { requestsPerSecond: 6_000, failed: 0 }, relay: { roundTrip: { p99Ms: 15 } } }, { search: { requestsPerSecond: 4_000, failed: 0 } }]);
    expect(search).toMatchObject({ median: 5_000, met: 1, measured: 2 });
    expect(relay).toMatchObject({ values: [15, undefined], met: 1, measured: 1 });
  });

  it('reads the slowest node and the 1,000/s window of cluster3', () => {
    const run = {
      rest: [{ result: { requestsPerSecond: 9_000 } }, { result: { requestsPerSecond: 2_900 } }],
      freshness: { windows: [{ rate: 500, diffLatency: { p99Ms: 50 } }, { rate: 1000, diffLatency: { p99Ms: 108 }, restFreshness: { p99Ms: 48 } }] },
      errors: {},
    };
    const [rest, diff, fresh, errors] = summarize(TARGETS.cluster3, [run]);
    expect(rest).toMatchObject({ values: [2_900], met: 0 });
    expect(diff).toMatchObject({ values: [108], met: 0 });
    expect(fresh).toMatchObject({ values: [48], met: 1 });
    expect(errors).toMatchObject({ values: [0], met: 1 });
  });

  it('knows the scenario from the file name and takes the middle of an even count', () => {
    expect(scenarioOf('load/results/cluster3-2026-11-30T10-56-09-868Z.json')).toBe('cluster3');
    expect(scenarioOf('load/results/2026-11-30T10-56-09-868Z.json')).toBeUndefined();
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeUndefined();
  });
});
