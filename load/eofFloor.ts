/**
 * Probe: what a mass disconnect costs the server's loop, layer by layer, without the hub.
 *
 * A server (bare `net`, http + ws, engine.io, or Socket.IO) holds N loopback sockets opened by a
 * child process; the child then destroys them all in one loop (a FIN each, as a balancer failover
 * or the bench's drop). The server's loop runs a 1 ms timer: every gap over 10 ms is printed with
 * what happened in it (EOFs read by libuv, 'end' and 'close' events, the main thread's CPU), and
 * the drop's whole CPU per socket at the end.
 *
 *   npx tsx load/eofFloor.ts <net|ws|eio|sio> [sockets] [--paced] [--destroy-on-eof]
 *
 * `--paced` emits 'end'/'close' from turns of 5 ms as src/live/lifecyclePacing.ts does (with its
 * per-event closure); `--destroy-on-eof` destroys a socket as soon as its EOF is read.
 */
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import net from 'node:net';

type Mode = 'net' | 'ws' | 'eio' | 'sio';

function runQueueNs(): number {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[1]);
  } catch {
    return 0;
  }
}

function threadCpuNs(): number {
  try {
    return Number(readFileSync("/proc/thread-self/schedstat", "utf8").split(" ")[0]);
  } catch {
    return 0;
  }
}

async function client(port: number, count: number, mode: Mode): Promise<void> {
  const sockets: net.Socket[] = [];
  const request =
    mode === 'net'
      ? ''
      : `GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;
  let inFlight = 0;
  let opened = 0;
  await new Promise<void>((resolve) => {
    const openMore = (): void => {
      while (inFlight < 200 && opened < count) {
        opened++;
        inFlight++;
        const socket = net.connect(port, '127.0.0.1');
        socket.on('error', () => {});
        sockets.push(socket);
        const done = (): void => {
          inFlight--;
          if (sockets.length === count && inFlight === 0) resolve();
          else openMore();
        };
        if (mode === 'net') socket.once('connect', done);
        else {
          socket.once('connect', () => socket.write(request));
          socket.once('data', done);
        }
      }
    };
    openMore();
  });
  process.send?.('ready');
  process.once('message', () => {
    for (const socket of sockets) socket.destroy();
    process.send?.('dropped');
  });
}

const { streamBaseState, kReadBytesOrError } = (process as unknown as { binding(name: string): { streamBaseState: Int32Array; kReadBytesOrError: number } }).binding('stream_wrap');

async function server(mode: Mode, count: number, paced: boolean, destroyOnEof: boolean, deferEof: boolean): Promise<void> {
  let reads = 0;
  let ends = 0;
  let closes = 0;
  let open = 0;
  const socketEmit = net.Socket.prototype.emit;
  const queue: Array<() => void> = [];
  let scheduled = false;
  const runTurn = (): void => {
    scheduled = false;
    const until = performance.now() + 5;
    while (queue.length > 0 && performance.now() < until) queue.shift()?.();
    if (queue.length > 0) {
      scheduled = true;
      setImmediate(runTurn);
    }
  };
  function pacedEmit(this: net.Socket, event: string | symbol): boolean {
    // biome-ignore lint/complexity/noArguments: as the hub does
    if (event !== 'end' && event !== 'close') return Reflect.apply(socketEmit, this, arguments);
    // biome-ignore lint/complexity/noArguments: as the hub does
    const args = Array.prototype.slice.call(arguments);
    queue.push(() => Reflect.apply(socketEmit, this, args));
    if (!scheduled) {
      scheduled = true;
      setImmediate(runTurn);
    }
    return this.listenerCount(event) > 0;
  }
  const adopt = (socket: net.Socket): void => {
    open++;
    const handle = (socket as unknown as { _handle: { onread: (this: unknown, ab: unknown) => unknown } })._handle;
    const onread = handle.onread;
    handle.onread = function (this: unknown, ab: unknown) {
      reads++;
      if (deferEof) {
        const nread = streamBaseState[kReadBytesOrError] ?? 0;
        if (nread >= 0) return onread.call(this, ab);
        queue.push(() => {
          if (socket.destroyed) return;
          streamBaseState[kReadBytesOrError] = nread;
          onread.call(this, undefined);
        });
        if (!scheduled) {
          scheduled = true;
          setImmediate(runTurn);
        }
        return undefined;
      }
      const result = onread.call(this, ab);
      if (destroyOnEof && socket.readableEnded === false && (socket as unknown as { _readableState: { ended: boolean } })._readableState.ended) socket.destroy();
      return result;
    };
    if (paced) (socket as net.Socket & { emit: typeof pacedEmit }).emit = pacedEmit;
    socket.on('end', () => ends++);
    socket.on('close', () => {
      closes++;
      open--;
    });
    socket.on('error', () => {});
  };

  let listening: net.Server;
  if (mode === 'net') {
    listening = net.createServer({ allowHalfOpen: true }, (socket) => {
      adopt(socket);
      // What ws does on 'end': end our side too.
      socket.on('end', () => socket.end());
    });
  } else {
    const httpServer = http.createServer();
    listening = httpServer;
    const fromEngine = createRequire(require.resolve('engine.io'));
    if (mode === 'ws') {
      const { WebSocketServer } = fromEngine('ws') as typeof import('ws');
      const wss = new WebSocketServer({ noServer: true });
      httpServer.on('upgrade', (req, socket, head) => {
        adopt(socket as net.Socket);
        wss.handleUpgrade(req, socket, head, () => {});
      });
    } else {
      httpServer.prependListener('upgrade', (_req, socket) => adopt(socket as net.Socket));
      if (mode === 'eio') (require('engine.io') as typeof import('engine.io')).attach(httpServer, { transports: ['websocket'], pingInterval: 600_000, pingTimeout: 600_000 });
      else new (require('socket.io') as typeof import('socket.io')).Server(httpServer, { transports: ['websocket'], pingInterval: 600_000, pingTimeout: 600_000 });
    }
  }
  listening.listen(0, '127.0.0.1', 65535);
  await new Promise((resolve) => listening.once('listening', resolve));
  const port = (listening.address() as net.AddressInfo).port;
  const child = fork(__filename, ['client', String(port), String(count), mode], { execArgv: process.execArgv });
  await new Promise((resolve) => child.once('message', resolve));
  while (open < count) await new Promise((resolve) => setTimeout(resolve, 50));
  await new Promise((resolve) => setTimeout(resolve, 500));
  (globalThis as { gc?: () => void }).gc?.();
  await new Promise((resolve) => setTimeout(resolve, 200));

  let last = performance.now();
  let lastCpu = threadCpuNs();
  let lastWait = runQueueNs();
  let lastCounts = [reads, ends, closes];
  let maxGap = 0;
  const gaps: string[] = [];
  const timer = setInterval(() => {
    const now = performance.now();
    const cpu = threadCpuNs();
    const wait = runQueueNs();
    const gap = now - last;
    if (gap > 10) {
      const d = [reads - (lastCounts[0] ?? 0), ends - (lastCounts[1] ?? 0), closes - (lastCounts[2] ?? 0)];
      gaps.push(`  gap ${gap.toFixed(1).padStart(7)} ms  cpu ${((cpu - lastCpu) / 1e6).toFixed(1).padStart(6)} ms  waiting ${((wait - lastWait) / 1e6).toFixed(1).padStart(6)} ms  reads ${String(d[0]).padStart(6)}  ends ${String(d[1]).padStart(6)}  closes ${String(d[2]).padStart(6)}`);
    }
    if (gap > maxGap) maxGap = gap;
    last = now;
    lastCpu = cpu;
    lastWait = wait;
    lastCounts = [reads, ends, closes];
  }, 1);
  const cpu0 = threadCpuNs();
  const proc0 = process.cpuUsage();
  const t0 = performance.now();
  child.send('drop');
  while (open > 0) await new Promise((resolve) => setTimeout(resolve, 5));
  const wall = performance.now() - t0;
  const cpu = (threadCpuNs() - cpu0) / 1e6;
  const proc = process.cpuUsage(proc0);
  clearInterval(timer);
  process.stdout.write(
    `${mode}${paced ? ' paced' : ''}${destroyOnEof ? ' destroy-on-eof' : ''}${deferEof ? ' defer-eof' : ''} ${count} sockets: all closed after ${wall.toFixed(0)} ms, main thread CPU ${cpu.toFixed(0)} ms (${((cpu / count) * 1000).toFixed(1)} µs per socket), process ${((proc.user + proc.system) / 1000).toFixed(0)} ms, longest gap ${maxGap.toFixed(1)} ms\n${gaps.join('\n')}\n`,
  );
  child.kill();
  process.exit(0);
}

if (process.argv[2] === 'client') void client(Number(process.argv[3]), Number(process.argv[4]), process.argv[5] as Mode);
else {
  const args = process.argv.slice(2);
  const positional = args.filter((a) => !a.startsWith('--'));
  void server((positional[0] ?? 'net') as Mode, Number(positional[1] ?? 10_000), args.includes('--paced'), args.includes('--destroy-on-eof'), args.includes('--defer-eof'));
}
