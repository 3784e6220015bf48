/**
 * Latency histograms and error counters that can be merged across worker processes.
 *
 * Workers never ship raw samples over IPC: a phase can produce hundreds of thousands of them.
 * Instead each worker records into a log-bucketed histogram (about 1% relative error, bounded
 * size) and the orchestrator merges the serialized buckets before taking percentiles.
 */

/** Smallest distinguishable latency, in milliseconds (1 µs). Smaller values share bucket 0. */
const MIN_RESOLVABLE_MS = 0.001;
/** Buckets per doubling of the value: 2^(1/64) ≈ 1.1% relative width. */
const BUCKETS_PER_DOUBLING = 64;

/** The wire form of a histogram: plain JSON, safe to send through `process.send`. */
export interface HistogramJson {
  count: number;
  sumMs: number;
  minMs: number;
  maxMs: number;
  /** [bucket index, count] pairs, only for non-empty buckets. */
  buckets: Array<[number, number]>;
}

/** Percentiles of one histogram, in milliseconds; null fields when there were no samples. */
export interface LatencySummary {
  count: number;
  meanMs: number | null;
  p50Ms: number | null;
  p90Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
}

export class LatencyHistogram {
  private readonly bucketCounts = new Map<number, number>();
  private count = 0;
  private sumMs = 0;
  private minMs = Number.POSITIVE_INFINITY;
  private maxMs = 0;

  static fromJson(json: HistogramJson): LatencyHistogram {
    const histogram = new LatencyHistogram();
    histogram.mergeJson(json);
    return histogram;
  }

  record(valueMs: number): void {
    // A negative latency can only come from clock skew between processes (diff latency uses
    // Date.now() in two processes); clamp rather than drop so the sample still counts.
    const value = Number.isFinite(valueMs) && valueMs > 0 ? valueMs : 0;
    const index = bucketIndexOf(value);
    this.bucketCounts.set(index, (this.bucketCounts.get(index) ?? 0) + 1);
    this.count += 1;
    this.sumMs += value;
    if (value < this.minMs) this.minMs = value;
    if (value > this.maxMs) this.maxMs = value;
  }

  get size(): number {
    return this.count;
  }

  mergeJson(json: HistogramJson): void {
    if (json.count === 0) return;
    for (const [index, bucketCount] of json.buckets) {
      this.bucketCounts.set(index, (this.bucketCounts.get(index) ?? 0) + bucketCount);
    }
    this.count += json.count;
    this.sumMs += json.sumMs;
    if (json.minMs < this.minMs) this.minMs = json.minMs;
    if (json.maxMs > this.maxMs) this.maxMs = json.maxMs;
  }

  /** The p-th percentile (0 < p <= 100), or null without samples. Never above the true maximum. */
  percentile(p: number): number | null {
    if (this.count === 0) return null;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    const indices = [...this.bucketCounts.keys()].sort((a, b) => a - b);
    let seen = 0;
    for (const index of indices) {
      seen += this.bucketCounts.get(index) ?? 0;
      if (seen >= rank) return Math.min(Math.max(bucketUpperBoundMs(index), this.minMs), this.maxMs);
    }
    return this.maxMs;
  }

  summary(): LatencySummary {
    if (this.count === 0) return { count: 0, meanMs: null, p50Ms: null, p90Ms: null, p99Ms: null, maxMs: null };
    return {
      count: this.count,
      meanMs: this.sumMs / this.count,
      p50Ms: this.percentile(50),
      p90Ms: this.percentile(90),
      p99Ms: this.percentile(99),
      maxMs: this.maxMs,
    };
  }

  toJson(): HistogramJson {
    return {
      count: this.count,
      sumMs: this.sumMs,
      minMs: this.count === 0 ? 0 : this.minMs,
      maxMs: this.maxMs,
      buckets: [...this.bucketCounts.entries()],
    };
  }
}

function bucketIndexOf(valueMs: number): number {
  if (valueMs <= MIN_RESOLVABLE_MS) return 0;
  return Math.ceil(Math.log2(valueMs / MIN_RESOLVABLE_MS) * BUCKETS_PER_DOUBLING);
}

function bucketUpperBoundMs(index: number): number {
  return MIN_RESOLVABLE_MS * 2 ** (index / BUCKETS_PER_DOUBLING);
}

export function mergeHistograms(parts: Iterable<HistogramJson>): LatencyHistogram {
  const merged = new LatencyHistogram();
  for (const part of parts) merged.mergeJson(part);
  return merged;
}

/** Error kind -> count. */
export type ErrorCountsJson = Record<string, number>;

/**
 * Errors counted by kind ("area: reason"). The number of distinct kinds is capped so that an
 * error message carrying ids (one per socket) cannot grow the report without bound.
 */
export class ErrorCounts {
  private static readonly MAX_KINDS = 100;
  private static readonly MAX_KIND_LENGTH = 160;
  private readonly counts = new Map<string, number>();

  add(kind: string, times = 1): void {
    if (times <= 0) return;
    let key = kind.length > ErrorCounts.MAX_KIND_LENGTH ? `${kind.slice(0, ErrorCounts.MAX_KIND_LENGTH)}…` : kind;
    if (!this.counts.has(key) && this.counts.size >= ErrorCounts.MAX_KINDS) key = 'other (too many distinct error kinds)';
    this.counts.set(key, (this.counts.get(key) ?? 0) + times);
  }

  merge(json: ErrorCountsJson): void {
    for (const [kind, times] of Object.entries(json)) this.add(kind, times);
  }

  get total(): number {
    let sum = 0;
    for (const times of this.counts.values()) sum += times;
    return sum;
  }

  toJson(): ErrorCountsJson {
    return Object.fromEntries([...this.counts.entries()].sort((a, b) => b[1] - a[1]));
  }

  /** Returns the counts and starts over: workers report errors once, with the reply they belong to. */
  drain(): ErrorCountsJson {
    const json = this.toJson();
    this.counts.clear();
    return json;
  }
}

/** A short, stable description of an unknown thrown value, for error kinds. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code !== undefined && !error.message.includes(code) ? `${code} ${error.message}` : error.message;
  }
  return String(error);
}
