/** Command-line options of load/bench.ts. */
import { randomBytes } from 'node:crypto';
import { assertLoopbackUrl } from './http';
import { SEARCH_BODY } from './rest';
import { GENERATORS, type Generator } from './trackers';

export const SCENARIOS = ['standard', 'mixed', 'storm', 'cluster3'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface BenchOptions {
  /** What to run: the standard steps, or one of the scenarios of load/README.md. */
  scenario: Scenario;
  quick: boolean;
  /** Extra environment for the hub(s) the bench starts (`--hub-env K=V,K=V`), e.g. LISTEN_BACKLOG=511 for a before/after. */
  hubEnv: Record<string, string>;
  /** Added to the load workers' nice value (`--generator-nice N`): the hub, not the generator, gets the CPU first. */
  generatorNice: number;
  /** Nice of the managed hub's autogroup (`--hub-autogroup-nice N`); undefined: the bench's own nice. */
  hubAutogroupNice: number | undefined;
  /** What the storm's polls of /metrics ask for: the few families they read (`named`), or everything (`full`, the bench before Nov 30's fifth pass, for A/B). */
  pollMetrics: PollMetrics;
  /** Padding of every relay ping and pong (mixed scenario). */
  relayBytes: number;
  /** Client of the bulk tracker tabs and the REST callers: lean (default) or the old socket.io-client + node:http. */
  generator: Generator;
  /** Hub nodes of the cluster3 scenario. */
  nodes: number;
  /** cluster3: rounds of REST over every node, each round starting one node later. */
  restRounds: number;
  /** cluster3: change rates of the cross-node freshness windows, one window each (default: --diff-rate). */
  diffRates: number[];
  /** Drive this already running hub instead of starting one. */
  url: string | undefined;
  /** Command that starts the hub (managed mode); undefined = build and run dist/index.js. */
  hubCommand: string | undefined;
  build: boolean;
  /** Tracker tabs at each step, ascending. */
  steps: number[];
  projects: number;
  trackerWorkers: number | undefined;
  maxSocketsPerWorker: number;
  connectConcurrency: number;
  /** Handshakes a tracker worker starts per turn of its loop (`--start-batch`; 0: all at once). */
  startBatch: number;
  connectTimeoutMs: number;
  connectDeadlineMs: number;
  restDurationMs: number;
  restConcurrency: number;
  restWorkers: number;
  restGzip: boolean;
  /** Page size of the filtered search (`limit` of its body). */
  searchLimit: number;
  relayPairs: number;
  relayDurationMs: number;
  relayPauseMs: number;
  dashboards: number;
  diffRate: number;
  diffDurationMs: number;
  socketPath: string;
  apiKey: string;
  jwtSecret: string;
  openFileLimit: number;
  outDir: string;
  settleMs: number;
  /** Phases left out (connect and memory always run). */
  skip: ReadonlySet<SkippablePhase>;
}

export const POLL_METRICS = ['named', 'full'] as const;
export type PollMetrics = (typeof POLL_METRICS)[number];

export const SKIPPABLE_PHASES = ['rest', 'relay', 'diffs'] as const;
export type SkippablePhase = (typeof SKIPPABLE_PHASES)[number];

export const USAGE = `Usage: npx tsx load/bench.ts [options]

  --scenario NAME          standard (default: the steps below), mixed (everything at once at the
                           last --sessions step), storm (drop every tab, all reconnect at once),
                           cluster3 (--nodes hubs on one redis-server); see load/README.md
  --quick                  smoke test: 200 tabs, 2 projects, short phases, 5 dashboards (< 60 s)
  --hub-env LIST           extra environment of the hubs the bench starts, K=V,K=V (e.g.
                           LISTEN_BACKLOG=511); repeatable, a later value wins per name
  --generator NAME         lean (default: raw WebSocket tracker tabs, REST over net with pre-built
                           requests) or socketio (socket.io-client tabs, node:http REST: the
                           generator before Nov 30, kept for A/B); relay, agents and dashboards
                           are socket.io-client either way
  --generator-nice N       mixed/storm: raise the load workers' nice value by N (0..19,
                           default 0), so that on a small box the hub gets a CPU before them
  --hub-autogroup-nice N   nice of the managed hub's autogroup and of the relay worker's
                           (-20..19; default: the bench's own nice, so that \`nice -n -10 npm run
                           bench\` covers the hub, which runs in a session of its own, and the
                           relay round trip's instrument; 0: the layout before, the hub's group at
                           0 and the relay worker in the caller's group)
  --poll-metrics WHAT      storm/cluster3: the polls of /metrics ask only for the families they read
                           (named, default: /metrics?name=...) or take every family (full, the
                           bench before the fifth pass; for A/B). Phase boundaries always take all families
  --relay-bytes N          padding of each relay ping and pong (default 0; mixed, cluster3: 1024)
  --relay-pause-ms N       pause between a pong and the pair's next ping (default 20; mixed, cluster3: 500)
  --nodes N                hub processes of the cluster3 scenario (default 3)
  --rest-rounds N          cluster3: REST rounds over every node, each starting one node later (default 2)
  --diff-rates A,B         cluster3: one freshness window per change rate (default: --diff-rate)
  --url URL                drive a running hub (http://127.0.0.1:PORT) instead of starting one;
                           needs --api-key and --jwt-secret matching the hub's configuration
  --hub-cmd CMD            command that starts the hub (default: npm run build, then
                           "node --expose-gc dist/index.js"); run as: bash -c 'ulimit -n N; exec CMD'
  --no-build               do not run npm run build before starting the hub
  --sessions A,B,...       tracker tabs per step (default 1000,5000,10000,19000)
  --projects N             projects the tabs are spread over (default 20)
  --tracker-workers N      tracker worker processes (default: enough for <= 10000 tabs each)
  --connect-concurrency N  handshakes in flight per tracker worker (default 200)
  --start-batch N          handshakes a tracker worker starts per turn of its event loop, so that
                           the first ones write their requests while it starts the rest (default
                           64; 0 = all in one synchronous loop, the generator before the sixth pass)
  --rest-duration S        seconds per REST operation and client count (default 4)
  --rest-concurrency N     concurrent REST clients (default 16)
  --rest-workers N         processes the REST clients are split over (default 2)
  --rest-gzip              REST clients accept gzip, as browsers do (default: they do not, as curl)
  --search-limit N         page size of the 2-filter search (default 50, at most 200)
  --relay-pairs N          agent<->tab pairs for relay round trips (default 8; mixed, cluster3: 200)
  --relay-duration S       seconds of relay pings, idle and under REST load each (default 5)
  --dashboards N           dashboard subscriptions (default 200)
  --diff-rate N            tracker changes per second during the diff phase (default 100)
  --diff-duration S        seconds of the diff phase (default 10)
  --skip LIST              leave out phases: any of rest,relay,diffs (connect/memory always run)
  --socket-path P          Socket.IO path (default /ws-assist/socket)
  --api-key K              API key allowed for every project (default: random, given to the hub)
  --jwt-secret S           agent JWT secret (default: random, given to the hub)
  --fd-limit N             open-file limit the started hub asks for (default 20000)
  --out DIR                where results go (default load/results)
  --help`;

export class UsageError extends Error {}

function searchLimit(raw: string | undefined): number {
  if (raw === undefined) return SEARCH_BODY.limit;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 200) throw new UsageError(`--search-limit must be an integer from 1 to 200, got ${raw}`);
  return n;
}

const SWITCHES = new Set(['--quick', '--no-build', '--rest-gzip', '--help']);
/** Options that may be given more than once; every other option given twice is refused. */
const REPEATABLE = new Set(['--hub-env']);

/**
 * `--hub-env` lists, in the order given: one NAME=value map, a later value winning per name, so
 * that a wrapper's defaults can be overridden by a later `--hub-env` on the same command line.
 */
export function parseHubEnv(lists: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const list of lists) {
    for (const pair of list.split(',').map((part) => part.trim()).filter(Boolean)) {
      const eq = pair.indexOf('=');
      if (eq < 1 || !/^[A-Z][A-Z0-9_]*$/.test(pair.slice(0, eq))) throw new UsageError(`--hub-env: expected NAME=value, got ${pair}`);
      env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  return env;
}

export function parseOptions(argv: readonly string[]): BenchOptions {
  const flags = new Map<string, string>();
  const repeated = new Map<string, string[]>();
  const switches = new Set<string>();
  const setFlag = (flag: string, value: string): void => {
    if (REPEATABLE.has(flag)) {
      repeated.set(flag, [...(repeated.get(flag) ?? []), value]);
      flags.set(flag, value);
      return;
    }
    const before = flags.get(flag);
    if (before !== undefined) throw new UsageError(`${flag} given twice (${before} and ${value}): give it once`);
    flags.set(flag, value);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith('--')) throw new UsageError(`unexpected argument ${arg}`);
    const eq = arg.indexOf('=');
    if (eq > 0) {
      if (SWITCHES.has(arg.slice(0, eq))) throw new UsageError(`${arg.slice(0, eq)} takes no value, got ${arg}`);
      setFlag(arg.slice(0, eq), arg.slice(eq + 1));
    } else if (SWITCHES.has(arg)) {
      switches.add(arg);
    } else {
      const value = argv[i + 1];
      // `--out --quick` is a forgotten value, not an output directory named --quick.
      if (value === undefined || value.startsWith('--')) throw new UsageError(`${arg} needs a value`);
      setFlag(arg, value);
      i += 1;
    }
  }
  if (switches.has('--help')) throw new UsageError('');
  const known = new Set(USAGE.match(/--[a-z-]+/g) ?? []);
  for (const flag of [...flags.keys(), ...switches]) {
    if (!known.has(flag)) throw new UsageError(`unknown option ${flag}`);
  }

  const quick = switches.has('--quick');
  const scenarioRaw = flags.get('--scenario') ?? 'standard';
  if (!(SCENARIOS as readonly string[]).includes(scenarioRaw)) throw new UsageError(`--scenario must be one of ${SCENARIOS.join(', ')}, got ${scenarioRaw}`);
  const scenario = scenarioRaw as Scenario;
  const mixed = scenario === 'mixed';
  const generatorRaw = flags.get('--generator') ?? 'lean';
  if (!(GENERATORS as readonly string[]).includes(generatorRaw)) throw new UsageError(`--generator must be one of ${GENERATORS.join(', ')}, got ${generatorRaw}`);
  const pollMetricsRaw = flags.get('--poll-metrics') ?? 'named';
  if (!(POLL_METRICS as readonly string[]).includes(pollMetricsRaw)) throw new UsageError(`--poll-metrics must be one of ${POLL_METRICS.join(', ')}, got ${pollMetricsRaw}`);
  const hubEnv = parseHubEnv(repeated.get('--hub-env') ?? []);
  const number = (flag: string, fallback: number, min = 0): number => {
    const raw = flags.get(flag);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < min) throw new UsageError(`${flag} must be a number >= ${min}, got ${raw}`);
    return value;
  };
  const niceValue = (flag: string, min: number): number | undefined => {
    const raw = flags.get(flag);
    if (raw === undefined) return undefined;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > 19) throw new UsageError(`${flag} must be an integer from ${min} to 19, got ${raw}`);
    return value;
  };
  const seconds = (flag: string, fallback: number): number => Math.round(number(flag, fallback, 0.1) * 1000);

  const url = flags.get('--url')?.replace(/\/+$/, '');
  if (url !== undefined) {
    try {
      assertLoopbackUrl(url);
    } catch (error) {
      throw new UsageError(error instanceof Error ? error.message : String(error));
    }
    // A running hub's settings and command are its own: these would be recorded and not applied.
    for (const flag of ['--hub-env', '--hub-cmd']) {
      if (flags.has(flag)) throw new UsageError(`${flag} applies to the hubs the bench starts, not to --url`);
    }
    if (scenario === 'cluster3') throw new UsageError('--scenario cluster3 starts its own hubs and redis-server: no --url');
  }
  const apiKey = flags.get('--api-key');
  const jwtSecret = flags.get('--jwt-secret');
  if (url !== undefined && (apiKey === undefined || jwtSecret === undefined)) {
    throw new UsageError('--url needs --api-key and --jwt-secret (the hub configuration of the running hub)');
  }

  const stepsRaw = flags.get('--sessions');
  const defaultSteps = quick ? [200] : scenario === 'standard' ? [1000, 5000, 10000, 19000] : scenario === 'cluster3' ? [45000] : [19000];
  const steps = stepsRaw !== undefined ? stepsRaw.split(',').map((part) => Number(part.trim())) : defaultSteps;
  if (steps.length === 0 || steps.some((step) => !Number.isInteger(step) || step < 1)) {
    throw new UsageError(`--sessions must be positive integers, got ${stepsRaw}`);
  }
  steps.sort((a, b) => a - b);

  const skip = new Set<SkippablePhase>();
  for (const name of (flags.get('--skip') ?? '').split(',').map((part) => part.trim()).filter(Boolean)) {
    if (!(SKIPPABLE_PHASES as readonly string[]).includes(name)) throw new UsageError(`--skip: unknown phase ${name}`);
    skip.add(name as SkippablePhase);
  }

  const cluster3 = scenario === 'cluster3';
  const diffRate = number('--diff-rate', quick ? 50 : cluster3 ? 1000 : 100, 0);
  const diffRatesRaw = flags.get('--diff-rates');
  const diffRates = diffRatesRaw === undefined ? [diffRate] : diffRatesRaw.split(',').map((part) => Number(part.trim()));
  if (diffRates.length === 0 || diffRates.some((rate) => !Number.isFinite(rate) || rate <= 0)) throw new UsageError(`--diff-rates must be positive numbers, got ${diffRatesRaw}`);

  const trackerWorkersRaw = flags.get('--tracker-workers');
  return {
    scenario,
    quick,
    hubEnv,
    generator: generatorRaw as Generator,
    generatorNice: niceValue('--generator-nice', 0) ?? 0,
    hubAutogroupNice: niceValue('--hub-autogroup-nice', -20),
    pollMetrics: pollMetricsRaw as PollMetrics,
    relayBytes: Math.floor(number('--relay-bytes', mixed || cluster3 ? 1024 : 0, 0)),
    nodes: Math.floor(number('--nodes', 3, 1)),
    restRounds: Math.floor(number('--rest-rounds', quick ? 1 : 2, 1)),
    diffRates,
    url,
    hubCommand: flags.get('--hub-cmd'),
    build: !switches.has('--no-build'),
    steps,
    projects: Math.floor(number('--projects', quick ? 2 : 20, 1)),
    trackerWorkers: trackerWorkersRaw !== undefined ? Math.floor(number('--tracker-workers', 1, 1)) : undefined,
    maxSocketsPerWorker: 15_000,
    connectConcurrency: Math.floor(number('--connect-concurrency', 200, 1)),
    startBatch: Math.floor(number('--start-batch', 64, 0)),
    connectTimeoutMs: 20_000,
    connectDeadlineMs: quick ? 20_000 : 120_000,
    restDurationMs: seconds('--rest-duration', quick ? 1 : 4),
    restConcurrency: Math.floor(number('--rest-concurrency', 16, 1)),
    restWorkers: Math.floor(number('--rest-workers', 2, 1)),
    restGzip: switches.has('--rest-gzip'),
    searchLimit: searchLimit(flags.get('--search-limit')),
    relayPairs: Math.floor(number('--relay-pairs', quick ? (mixed || cluster3 ? 10 : 2) : mixed || cluster3 ? 200 : 8, 1)),
    relayDurationMs: seconds('--relay-duration', quick ? 1.5 : 5),
    relayPauseMs: Math.floor(number('--relay-pause-ms', mixed || cluster3 ? 500 : 20, 0)),
    dashboards: Math.floor(number('--dashboards', quick ? 5 : 200, 0)),
    diffRate,
    diffDurationMs: seconds('--diff-duration', quick ? 3 : 10),
    socketPath: flags.get('--socket-path') ?? '/ws-assist/socket',
    apiKey: apiKey ?? `bench-${randomBytes(12).toString('hex')}`,
    jwtSecret: jwtSecret ?? randomBytes(24).toString('hex'),
    openFileLimit: Math.floor(number('--fd-limit', 20_000, 1024)),
    outDir: flags.get('--out') ?? 'load/results',
    settleMs: quick ? 300 : 1500,
    skip,
  };
}
