/**
 * Several runs of one scenario side by side, against issue 17's targets.
 *
 * On a shared two-core box two runs of the same build differ 2–6× in their tails
 * (docs/performance.md), so a target is judged on several runs: this prints each target's value in
 * every run given, their median and how many runs met it.
 *
 *   npm run bench:summary -- load/results/storm-*.json
 */
import fs from 'node:fs';
import path from 'node:path';

/** One target's figure in one run's result JSON (undefined when the run does not have it). */
interface Target {
  figure: string;
  target: string;
  /** The run's value; undefined when absent. */
  read(result: Record<string, unknown>): number | undefined;
  met(value: number): boolean;
}

export interface TargetSummary {
  figure: string;
  target: string;
  values: Array<number | undefined>;
  median: number | undefined;
  /** Runs whose value met the target, of those that have it. */
  met: number;
  measured: number;
}

function at(value: unknown, ...keys: Array<string | number>): unknown {
  let current = value;
  for (const key of keys) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string | number, unknown>)[key];
  }
  return current;
}

function numberAt(value: unknown, ...keys: Array<string | number>): number | undefined {
  const found = at(value, ...keys);
  return typeof found === 'number' && Number.isFinite(found) ? found : undefined;
}

function sumOf(record: unknown): number | undefined {
  if (record === null || typeof record !== 'object') return undefined;
  return Object.values(record).reduce<number>((sum, n) => sum + (typeof n === 'number' ? n : 0), 0);
}

const atMost = (limit: number) => (value: number) => value <= limit;
const atLeast = (limit: number) => (value: number) => value >= limit;

/** The 1,000 changes/s window of cluster3's freshness phase (the rate the target names). */
function freshnessWindow(result: Record<string, unknown>): unknown {
  const windows = at(result, 'freshness', 'windows');
  return Array.isArray(windows) ? windows.find((w) => numberAt(w, 'rate') === 1000) : undefined;
}

export const TARGETS: Record<'storm' | 'mixed' | 'cluster3', Target[]> = {
  storm: [
    { figure: 'storm: count exact after (ms)', target: '<= 10000', read: (r) => numberAt(r, 'storm', 'exactAfterMs'), met: atMost(10_000) },
    { figure: 'storm: longest stall (ms)', target: '<= 150', read: (r) => numberAt(r, 'storm', 'longestStallMs'), met: atMost(150) },
    { figure: 'mass disconnect: longest stall (ms)', target: '<= 100', read: (r) => numberAt(r, 'massDisconnect', 'longestStallMs'), met: atMost(100) },
    {
      figure: 'storm: failed + refused',
      target: '0',
      read: (r) => {
        const failed = numberAt(r, 'storm', 'failed');
        const refused = numberAt(r, 'storm', 'refusedByHub');
        return failed === undefined || refused === undefined ? undefined : failed + refused;
      },
      met: atMost(0),
    },
    { figure: 'storm: hub CPU per connect (ms)', target: '-', read: (r) => numberAt(r, 'storm', 'hubCpuMsPerConnect'), met: () => true },
  ],
  mixed: [
    { figure: 'search (req/s)', target: '>= 5000', read: (r) => numberAt(r, 'search', 'requestsPerSecond'), met: atLeast(5000) },
    { figure: 'relay round trip p99 (ms)', target: '<= 20', read: (r) => numberAt(r, 'relay', 'roundTrip', 'p99Ms'), met: atMost(20) },
    { figure: 'diff latency p99 (ms)', target: '<= 100', read: (r) => numberAt(r, 'diffs', 'diffLatency', 'p99Ms'), met: atMost(100) },
    {
      figure: 'errors (REST failed + worker errors)',
      target: '0',
      read: (r) => {
        const failed = numberAt(r, 'search', 'failed');
        const errors = sumOf(at(r, 'errors'));
        return failed === undefined || errors === undefined ? undefined : failed + errors;
      },
      met: atMost(0),
    },
  ],
  cluster3: [
    {
      figure: 'REST on the slowest node (req/s)',
      target: '>= 3000',
      read: (r) => {
        const rest = at(r, 'rest');
        if (!Array.isArray(rest) || rest.length === 0) return undefined;
        const rates = rest.map((round) => numberAt(round, 'result', 'requestsPerSecond')).filter((n): n is number => n !== undefined);
        return rates.length === rest.length ? Math.min(...rates) : undefined;
      },
      met: atLeast(3000),
    },
    { figure: 'diff freshness p99 at 1,000/s (ms)', target: '<= 100', read: (r) => numberAt(freshnessWindow(r), 'diffLatency', 'p99Ms'), met: atMost(100) },
    { figure: 'REST freshness p99 at 1,000/s (ms)', target: '<= 100', read: (r) => numberAt(freshnessWindow(r), 'restFreshness', 'p99Ms'), met: atMost(100) },
    { figure: 'errors', target: '0', read: (r) => sumOf(at(r, 'errors')), met: atMost(0) },
  ],
};

export function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

export function summarize(targets: Target[], results: Array<Record<string, unknown>>): TargetSummary[] {
  return targets.map((t) => {
    const values = results.map((r) => t.read(r));
    const measured = values.filter((v): v is number => v !== undefined);
    return { figure: t.figure, target: t.target, values, median: median(measured), met: measured.filter(t.met).length, measured: measured.length };
  });
}

/** The scenario a result file holds, from its name (`<scenario>-<time>.json`, as the bench writes them). */
export function scenarioOf(file: string): keyof typeof TARGETS | undefined {
  const name = path.basename(file);
  return (Object.keys(TARGETS) as Array<keyof typeof TARGETS>).find((scenario) => name.startsWith(`${scenario}-`));
}

function fmt(value: number | undefined): string {
  if (value === undefined) return '-';
  if (Number.isInteger(value) || Math.abs(value) >= 100) return value.toFixed(0);
  return Math.abs(value) >= 10 ? value.toFixed(1) : value.toFixed(2);
}

function main(files: string[]): number {
  if (files.length === 0) {
    console.error('usage: npm run bench:summary -- <result.json> ... (files the bench wrote to load/results)');
    return 2;
  }
  const byScenario = new Map<keyof typeof TARGETS, string[]>();
  for (const file of files) {
    const scenario = scenarioOf(file);
    if (!scenario) {
      console.error(`${file}: not a storm-, mixed- or cluster3- result file`);
      return 2;
    }
    byScenario.set(scenario, [...(byScenario.get(scenario) ?? []), file]);
  }
  for (const [scenario, scenarioFiles] of byScenario) {
    const results = scenarioFiles.map((file) => JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>);
    console.log(`\n== ${scenario}: ${results.length} runs (${scenarioFiles.map((f) => path.basename(f)).join(', ')}) ==`);
    for (const row of summarize(TARGETS[scenario], results)) {
      const met = row.target === '-' ? '' : `; met in ${row.met} of ${row.measured}`;
      console.log(`${row.figure}${row.target === '-' ? '' : ` [target ${row.target}]`}: ${row.values.map(fmt).join(' / ')}; median ${fmt(row.median)}${met}`);
    }
  }
  return 0;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
