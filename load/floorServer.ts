/**
 * A bare Socket.IO server for `load/floor.ts`: the same path and engine settings as the hub, no hub
 * logic, and the two routes the floor measurement reads (`/ready`, `POST /debug/gc`). With
 * FLOOR_RELEASE=1 every connection goes through the hub's own `releaseHandshake` and
 * `compactSocket`, so the floor shows what Socket.IO and `ws` keep per connection once the hub has
 * dropped what it can.
 */
import { createServer } from 'node:http';
import { Server } from 'socket.io';
import { compactSocket, releaseHandshake } from '../src/live/socketMemory';

const release = process.env.FLOOR_RELEASE === '1';
const port = Number(process.env.LISTEN_PORT);
const path = process.env.WS_PATH ?? '/ws-assist/socket';

const http = createServer((req, res) => {
  if (req.url === '/ready') {
    res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"status":"ready"}');
    return;
  }
  if (req.url === '/debug/gc' && req.method === 'POST') {
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    const { heapUsed, rss } = process.memoryUsage();
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ gc: gc !== undefined, heapUsed, rss }));
    return;
  }
  res.writeHead(404).end();
});
const io = new Server(http, { path, perMessageDeflate: false, httpCompression: false });
io.on('connection', (socket) => {
  if (!release) return;
  releaseHandshake(socket);
  compactSocket(socket);
});
http.listen(port, '127.0.0.1');
