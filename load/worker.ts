/**
 * A load worker process (forked by load/lib/workers.ts; not meant to be run by hand).
 *
 * It holds whatever fleets the orchestrator asks it to drive (tracker tabs, REST clients,
 * relay pairs, dashboards), answers one response per request, and exits on its own when the
 * orchestrator disconnects or the maximum lifetime passes.
 */
import { DashboardFleet } from './lib/dashboards';
import { RelayPairs } from './lib/relay';
import { RestLoad } from './lib/rest';
import { ErrorCounts, describeError } from './lib/stats';
import { TrackerFleet } from './lib/trackers';
import {
  isRequestMessage,
  type CommandArgs,
  type CommandName,
  type CommandResult,
  type RequestMessage,
  type ResponseMessage,
  type WorkerInit,
  type WorkerUsage,
} from './lib/workers';

interface Fleets {
  trackers: TrackerFleet;
  rest: RestLoad;
  relay: RelayPairs;
  dashboards: DashboardFleet;
}

const errors = new ErrorCounts();
let fleets: Fleets | undefined;
/** Shared by every fleet, so retargeting it moves all later connections. */
let hubConnection: WorkerInit['hub'] | undefined;

function usage(): WorkerUsage {
  const cpu = process.cpuUsage();
  const memory = process.memoryUsage();
  return { pid: process.pid, cpuSeconds: (cpu.user + cpu.system) / 1e6, systemCpuSeconds: cpu.system / 1e6, rssBytes: memory.rss, heapUsedBytes: memory.heapUsed };
}

function initialized(): Fleets {
  if (fleets === undefined) throw new Error('worker used before init');
  return fleets;
}

type Handlers = { [K in CommandName]: (args: CommandArgs<K>) => Promise<CommandResult<K>> | CommandResult<K> };

const handlers: Handlers = {
  init: (init: WorkerInit) => {
    hubConnection = init.hub;
    fleets = {
      trackers: new TrackerFleet(init.hub, errors, init.generator),
      rest: new RestLoad(init.hub, errors, init.generator),
      relay: new RelayPairs(init.hub, errors),
      dashboards: new DashboardFleet(init.hub, errors),
    };
    // Whatever happens to the orchestrator, this process does not outlive the run.
    setTimeout(() => {
      process.stderr.write(`load worker ${process.argv[2] ?? ''}: maximum lifetime reached, exiting\n`);
      process.exit(3);
    }, init.maxLifetimeMs).unref();
    return usage();
  },
  usage: () => usage(),
  retarget: ({ url }) => {
    if (hubConnection === undefined) throw new Error('worker used before init');
    hubConnection.url = url;
    return usage();
  },
  'trackers.connect': (args) => initialized().trackers.connect(args),
  'trackers.update': (args) => initialized().trackers.sendUpdates(args),
  'trackers.close': () => initialized().trackers.close(),
  'trackers.drop': () => initialized().trackers.drop(),
  'rest.run': (args) => initialized().rest.run(args),
  'relay.connect': (args) => initialized().relay.connect(args),
  'relay.run': (args) => initialized().relay.run(args),
  'relay.close': () => initialized().relay.close(),
  'dashboards.connect': (args) => initialized().dashboards.connect(args),
  'dashboards.measure': (args) => initialized().dashboards.measure(args),
  'dashboards.collect': () => initialized().dashboards.collect(),
  'dashboards.close': () => initialized().dashboards.close(),
};

async function handle<K extends CommandName>(request: RequestMessage<K>): Promise<CommandResult<K>> {
  const handler = handlers[request.command] as (args: CommandArgs<K>) => Promise<CommandResult<K>> | CommandResult<K>;
  if (handler === undefined) throw new Error(`unknown command ${String(request.command)}`);
  return handler(request.args);
}

function reply(message: ResponseMessage): void {
  if (process.connected) process.send?.(message);
}

process.on('message', (message: unknown) => {
  if (!isRequestMessage(message)) return;
  handle(message).then(
    (result) => reply({ kind: 'response', id: message.id, ok: true, result, errors: errors.drain() }),
    (error: unknown) => reply({ kind: 'response', id: message.id, ok: false, message: describeError(error), errors: errors.drain() }),
  );
});

// The orchestrator is gone (finished, crashed or Ctrl-C): close sockets and leave.
process.on('disconnect', () => {
  if (fleets !== undefined) {
    fleets.dashboards.close();
    fleets.relay.close();
    fleets.trackers.close();
  }
  setTimeout(() => process.exit(0), 200).unref();
});

// Ctrl-C reaches the whole foreground process group; the orchestrator does the cleanup.
process.on('SIGINT', () => undefined);

if (process.send === undefined) {
  process.stderr.write('load/worker.ts is started by load/bench.ts, not by hand\n');
  process.exit(2);
}
process.send({ kind: 'ready' });
