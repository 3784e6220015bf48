/**
 * Load worker processes and their IPC protocol.
 *
 * The generator runs in forked processes (not in the orchestrator, and never in the hub) so
 * the hub is what gets measured and no process holds more sockets than its open-file limit.
 * Each worker is `load/worker.ts` run through tsx. The orchestrator sends typed requests and
 * gets one response per request; every response also carries the errors the worker counted
 * since its previous response, so errors are attributed to the phase they happened in.
 *
 * Workers exit by themselves when the orchestrator goes away (IPC disconnect) or after a
 * maximum lifetime, whichever comes first.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { settleWithin } from './async';
import { readAutogroupNice, setAutogroupNice } from './hub';
import type { DashboardCollectResult, DashboardConnectArgs, DashboardConnectResult, DashboardMeasureArgs } from './dashboards';
import type { RelayConnectArgs, RelayConnectResult, RelayRunArgs, RelayRunResult } from './relay';
import type { RestRunArgs, RestRunResult } from './rest';
import type { HubConnection } from './sockets';
import { newRunTag } from './population';
import type { BenchOptions } from './options';
import type { ErrorCountsJson } from './stats';
import type { CloseResult, Generator, TrackerConnectArgs, TrackerConnectResult, TrackerUpdateArgs, TrackerUpdateResult } from './trackers';

export interface WorkerInit {
  hub: HubConnection;
  /** The worker exits on its own after this long, whatever happens. */
  maxLifetimeMs: number;
  /** Client of the bulk tracker tabs and the REST callers (`--generator`). */
  generator: Generator;
}

/** What every worker of one run is told: the hub, a fresh population (one run tag), the client. */
export function workerInit(options: BenchOptions, url: string, maxLifetimeMs: number): WorkerInit {
  return {
    hub: {
      url,
      socketPath: options.socketPath,
      apiKey: options.apiKey,
      jwtSecret: options.jwtSecret,
      population: { projectCount: options.projects, runTag: newRunTag(Date.now()), startedAtMs: Date.now() },
    },
    maxLifetimeMs,
    generator: options.generator,
  };
}

/** The generator's own resource use, to tell whether the generator was the bottleneck. */
export interface WorkerUsage {
  pid: number;
  cpuSeconds: number;
  /** The part of `cpuSeconds` spent in the kernel (on loopback, a send also runs the receiver's TCP path). */
  systemCpuSeconds?: number;
  rssBytes: number;
  heapUsedBytes: number;
}

type None = Record<string, never>;

/** Every command a worker understands: its arguments and its result. */
export interface WorkerCommands {
  init: { args: WorkerInit; result: WorkerUsage };
  usage: { args: None; result: WorkerUsage };
  /** Points every later connection at another hub URL (a restarted hub listens on a fresh port). */
  retarget: { args: { url: string }; result: WorkerUsage };
  'trackers.connect': { args: TrackerConnectArgs; result: TrackerConnectResult };
  'trackers.update': { args: TrackerUpdateArgs; result: TrackerUpdateResult };
  'trackers.close': { args: None; result: CloseResult };
  /** Destroys every tab's TCP socket (no close handshake): the first half of a restart storm. */
  'trackers.drop': { args: None; result: CloseResult };
  'rest.run': { args: RestRunArgs; result: RestRunResult };
  'relay.connect': { args: RelayConnectArgs; result: RelayConnectResult };
  'relay.run': { args: RelayRunArgs; result: RelayRunResult };
  'relay.close': { args: None; result: CloseResult };
  'dashboards.connect': { args: DashboardConnectArgs; result: DashboardConnectResult };
  'dashboards.measure': { args: DashboardMeasureArgs; result: { subscriptions: number } };
  'dashboards.collect': { args: None; result: DashboardCollectResult };
  'dashboards.close': { args: None; result: CloseResult };
}
export type CommandName = keyof WorkerCommands;
export type CommandArgs<K extends CommandName> = WorkerCommands[K]['args'];
export type CommandResult<K extends CommandName> = WorkerCommands[K]['result'];

export interface RequestMessage<K extends CommandName = CommandName> {
  kind: 'request';
  id: number;
  command: K;
  args: CommandArgs<K>;
}

export type ResponseMessage =
  | { kind: 'response'; id: number; ok: true; result: unknown; errors: ErrorCountsJson }
  | { kind: 'response'; id: number; ok: false; message: string; errors: ErrorCountsJson };

export interface ReadyMessage {
  kind: 'ready';
}

export type WorkerMessage = ResponseMessage | ReadyMessage;

export function isWorkerMessage(value: unknown): value is WorkerMessage {
  if (typeof value !== 'object' || value === null) return false;
  const kind = (value as { kind?: unknown }).kind;
  return kind === 'ready' || (kind === 'response' && typeof (value as { id?: unknown }).id === 'number');
}

export function isRequestMessage(value: unknown): value is RequestMessage {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { kind?: unknown }).kind === 'request' &&
    typeof (value as { id?: unknown }).id === 'number' &&
    typeof (value as { command?: unknown }).command === 'string'
  );
}

interface PendingRequest {
  resolve: (result: unknown) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

const WORKER_ENTRY = path.join(__dirname, '..', 'worker.ts');
const WORKER_START_TIMEOUT_MS = 30_000;

/** A forked worker process, from the orchestrator's side. */
export class LoadWorker {
  private nextId = 1;
  private readonly pending = new Map<number, PendingRequest>();
  private exitedWith: string | undefined;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    private readonly onErrors: (errors: ErrorCountsJson) => void,
  ) {
    child.on('message', (message: unknown) => {
      if (!isWorkerMessage(message) || message.kind !== 'response') return;
      this.onErrors(message.errors);
      const request = this.pending.get(message.id);
      if (request === undefined) return;
      this.pending.delete(message.id);
      clearTimeout(request.timer);
      if (message.ok) request.resolve(message.result);
      else request.reject(new Error(`worker ${this.name}: ${message.message}`));
    });
    child.on('exit', (code, signal) => {
      this.exitedWith = signal ?? `code ${code}`;
      for (const request of this.pending.values()) {
        clearTimeout(request.timer);
        request.reject(new Error(`worker ${this.name} exited (${this.exitedWith})`));
      }
      this.pending.clear();
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Forks the worker and waits until it has loaded and accepted `init`. */
  static async start(name: string, init: WorkerInit, onErrors: (errors: ErrorCountsJson) => void, autogroupNice?: number): Promise<LoadWorker> {
    const tsxLoader = pathToFileURL(require.resolve('tsx')).href;
    // With `autogroupNice`, a session (and autogroup) of its own at that nice: see `startWorkerSet`.
    // It still exits when the orchestrator goes (the IPC channel's 'disconnect').
    const child = fork(WORKER_ENTRY, [name], {
      execArgv: ['--import', tsxLoader],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      detached: autogroupNice !== undefined,
    });
    if (autogroupNice !== undefined && child.pid !== undefined) setAutogroupNice(child.pid, autogroupNice);
    const worker = new LoadWorker(name, child, onErrors);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`worker ${name} did not start within ${WORKER_START_TIMEOUT_MS} ms`)), WORKER_START_TIMEOUT_MS);
      child.once('message', (message: unknown) => {
        clearTimeout(timer);
        if (isWorkerMessage(message) && message.kind === 'ready') resolve();
        else reject(new Error(`worker ${name} sent an unexpected first message`));
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`worker ${name} exited during start (code ${code})`));
      });
    }).catch((error: unknown) => {
      worker.kill();
      throw error;
    });
    await worker.request('init', init, WORKER_START_TIMEOUT_MS);
    return worker;
  }

  request<K extends CommandName>(command: K, args: CommandArgs<K>, timeoutMs: number): Promise<CommandResult<K>> {
    if (this.exitedWith !== undefined) return Promise.reject(new Error(`worker ${this.name} has exited (${this.exitedWith})`));
    const id = this.nextId++;
    const message: RequestMessage<K> = { kind: 'request', id, command, args };
    return new Promise<CommandResult<K>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`worker ${this.name}: ${command} did not answer within ${Math.round(timeoutMs)} ms`));
      }, timeoutMs);
      // The worker answers this command with its result type: the cast is the IPC boundary.
      this.pending.set(id, { resolve: (result) => resolve(result as CommandResult<K>), reject, timer });
      this.child.send(message, (error) => {
        if (error === null || !this.pending.has(id)) return;
        this.pending.delete(id);
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  /** Asks the worker to exit (by closing IPC), and kills it if it has not within `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.exitedWith !== undefined) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    if (this.child.connected) this.child.disconnect();
    await settleWithin(exited, graceMs);
    if (this.exitedWith !== undefined) return;
    this.kill();
    await settleWithin(exited, 1000);
  }

  kill(): void {
    if (this.exitedWith === undefined && this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

/** The worker processes of one run, by role. Trackers are spread over several processes. */
export interface WorkerSet {
  trackers: LoadWorker[];
  /** REST clients are split over these, so that one generator process is not the limit. */
  rest: LoadWorker[];
  relay: LoadWorker;
  dashboards: LoadWorker;
  all: LoadWorker[];
}

/**
 * The nice of the relay worker's own autogroup for a run: the hub's (`--hub-autogroup-nice`, else
 * the bench's own nice); with `--hub-autogroup-nice 0` none, the layout before 30 November (the
 * relay worker in the caller's group).
 */
export function relayAutogroupNice(hubAutogroupNice: number | undefined, ownNice: number): number | undefined {
  if (hubAutogroupNice === 0) return undefined;
  return hubAutogroupNice ?? ownNice;
}

/**
 * The load workers stay in the caller's autogroup. When the hub's and the relay worker's groups get
 * the bench's nice, the caller's group gets it too, for the run: three equal groups, so the hub and
 * the load workers split the CPU evenly as they did before 30 November, all above other sessions'
 * work. Left at 0 against two groups at -10, the REST clients waited 4.9 s of a 12.2 s mixed window
 * for a CPU and searched at 3,363 req/s (docs/performance.md, "Fifth pass", "lead").
 */
function levelCallerGroup(nice: number): void {
  const previous = readAutogroupNice(process.pid);
  if (previous === undefined || previous === nice || !setAutogroupNice(process.pid, nice)) return;
  process.once('exit', () => setAutogroupNice(process.pid, previous));
}

export async function startWorkerSet(
  trackerWorkers: number,
  restWorkers: number,
  init: WorkerInit,
  onErrors: (errors: ErrorCountsJson) => void,
  /** Nice of the relay worker's own autogroup; undefined: it stays in the caller's group. */
  relayGroupNice?: number,
): Promise<WorkerSet> {
  const names = [
    ...Array.from({ length: trackerWorkers }, (_, i) => `trackers-${i + 1}`),
    ...Array.from({ length: restWorkers }, (_, i) => `rest-${i + 1}`),
    'relay',
    'dashboards',
  ];
  // The relay worker is the instrument of the relay round trip: its own autogroup at the hub's nice
  // (load/lib/hub.ts), so that a pong it reads late because the load workers hold the CPU is not
  // counted as the hub's latency. In the caller's group with them, it waited 5.3 s of a 12 s mixed
  // window for a CPU once the hub's group had the bench's nice (docs/performance.md, "Fifth pass", relay).
  if (relayGroupNice !== undefined) levelCallerGroup(relayGroupNice);
  const started = await Promise.allSettled(names.map((name) => LoadWorker.start(name, init, onErrors, name === 'relay' ? relayGroupNice : undefined)));
  const workers = started.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []));
  const failure = started.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
  if (failure !== undefined) {
    await Promise.all(workers.map((worker) => worker.stop(1000)));
    throw failure.reason instanceof Error ? failure.reason : new Error(String(failure.reason));
  }
  return {
    trackers: workers.slice(0, trackerWorkers),
    rest: workers.slice(trackerWorkers, trackerWorkers + restWorkers),
    relay: workers[trackerWorkers + restWorkers] as LoadWorker,
    dashboards: workers[trackerWorkers + restWorkers + 1] as LoadWorker,
    all: workers,
  };
}
