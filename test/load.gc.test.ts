/**
 * The bench's GC row (load/lib/hub.ts `gcBetween`): what a phase's tail may be made of. A mixed run
 * whose window holds a mark-compact and one whose window holds none differ 2-6x in their relay p99
 * (docs/performance.md, "Fourth pass"), so each phase reports the hub's GC from its /metrics.
 */
import { describeGc, gcBetween, parsePrometheusText, scrapeMetrics } from '../load/lib/hub';
import { API_KEY, sharedTestHub } from './support/hub';
import { eventually } from './support/wait';

/** prom-client's exposition of `nodejs_gc_duration_seconds` with the given counts per kind and bucket. */
function gcText(kinds: Record<string, { sum: number; le001: number; le01: number; le1: number; count: number }>): string {
  const lines = ['# HELP nodejs_gc_duration_seconds Garbage collection duration by kind, one of major, minor, incremental or weakcb.', '# TYPE nodejs_gc_duration_seconds histogram'];
  for (const [kind, k] of Object.entries(kinds)) {
    lines.push(`nodejs_gc_duration_seconds_bucket{le="0.001",kind="${kind}"} 0`);
    lines.push(`nodejs_gc_duration_seconds_bucket{le="0.01",kind="${kind}"} ${k.le001}`);
    lines.push(`nodejs_gc_duration_seconds_bucket{le="0.1",kind="${kind}"} ${k.le01}`);
    lines.push(`nodejs_gc_duration_seconds_bucket{le="1",kind="${kind}"} ${k.le1}`);
    lines.push(`nodejs_gc_duration_seconds_bucket{le="+Inf",kind="${kind}"} ${k.count}`);
    lines.push(`nodejs_gc_duration_seconds_sum{kind="${kind}"} ${k.sum}`);
    lines.push(`nodejs_gc_duration_seconds_count{kind="${kind}"} ${k.count}`);
  }
  return lines.join('\n');
}

describe("the bench's GC figures between two scrapes", () => {
  it('counts each kind, sums its pauses and counts the pauses over 10 and 100 ms', () => {
    const before = parsePrometheusText(
      gcText({
        minor: { sum: 0.5, le001: 90, le01: 100, le1: 100, count: 100 },
        major: { sum: 0.02, le001: 0, le01: 1, le1: 1, count: 1 },
        incremental: { sum: 0.004, le001: 4, le01: 4, le1: 4, count: 4 },
      }),
    );
    // Then 20 scavenges (3 over 10 ms, one of them over 100 ms), one mark-compact of 25 ms, 10 ms of `incremental` entries.
    const after = parsePrometheusText(
      gcText({
        minor: { sum: 0.75, le001: 107, le01: 119, le1: 120, count: 120 },
        major: { sum: 0.045, le001: 0, le01: 2, le1: 2, count: 2 },
        incremental: { sum: 0.014, le001: 14, le01: 14, le1: 14, count: 14 },
      }),
    );
    const gc = gcBetween(before, after);
    expect(gc.minor).toBe(20);
    expect(gc.minorMs).toBeCloseTo(250);
    expect(gc.major).toBe(1);
    expect(gc.majorMs).toBeCloseTo(25);
    expect(gc.incrementalMs).toBeCloseTo(10);
    // 3 scavenges and the mark-compact over 10 ms; one scavenge over 100 ms.
    expect(gc.over10ms).toBe(4);
    expect(gc.over100ms).toBe(1);
    expect(describeGc(gc)).toBe('1 major (25 ms) + 20 scavenges (250 ms); 4 > 10 ms, 1 > 100 ms');
  });

  it('is all zeros when nothing changed, or when a scrape had no GC metric', () => {
    const text = parsePrometheusText(gcText({ minor: { sum: 0.5, le001: 90, le01: 100, le1: 100, count: 100 } }));
    expect(gcBetween(text, text)).toEqual({ minor: 0, minorMs: 0, major: 0, majorMs: 0, incrementalMs: 0, over10ms: 0, over100ms: 0 });
    expect(gcBetween(new Map(), new Map()).minor).toBe(0);
  });

  describe('against a real hub', () => {
    const hub = sharedTestHub();

    it("the bench's scrape keeps the GC samples, and the scavenges the hub's process runs show up", async () => {
      // The hub runs in this process: young garbage made here is scavenged there.
      let keep: unknown[] = [];
      const garbage = (): void => {
        for (let i = 0; i < 200_000; i++) keep.push({ i, s: `garbage ${i}` });
        keep = [];
      };
      // prom-client shows a GC kind once it has observed one.
      let before = await scrapeMetrics(hub().url, API_KEY);
      await eventually(
        async () => {
          garbage();
          before = await scrapeMetrics(hub().url, API_KEY);
          return (before?.gc.size ?? 0) > 0;
        },
        () => 'no nodejs_gc_duration_seconds sample in the scrape',
      );
      let gc = gcBetween(new Map(), new Map());
      await eventually(
        async () => {
          garbage();
          const after = await scrapeMetrics(hub().url, API_KEY);
          gc = gcBetween(before?.gc ?? new Map(), after?.gc ?? new Map());
          return gc.minor > 0 && gc.minorMs > 0;
        },
        () => `no scavenge seen: ${describeGc(gc)}`,
      );
    });
  });
});
