/**
 * A lean keep-alive HTTP/1.1 client for the REST load: one `net` socket per client, the request
 * bytes built once per distinct call, and a small response parser (status line, Content-Length or
 * chunked body, Connection: close). One request in flight per connection, as the closed-loop
 * clients need.
 *
 * Why: node:http's client (ClientRequest, an HTTP parser, header objects, IncomingMessage stream
 * events per answer) cost the two REST worker processes a large share of a core at 5,000+ req/s
 * on the hub's two cores (docs/performance.md, "gen").
 *
 * The body is returned as received (compressed when the answer was); the caller decodes it only
 * when it checks it (`decodeBody`).
 */
import net from 'node:net';
import { gunzipSync } from 'node:zlib';
import { assertLoopbackUrl } from './http';

export interface LeanResponse {
  status: number;
  /** Body bytes as received (compressed, when `gzip` is true). */
  raw: Buffer;
  gzip: boolean;
  /** From writing the request to the last byte of the body, in milliseconds. */
  latencyMs: number;
}

/** The body as text, gunzipped when the answer was compressed. */
export function decodeBody(response: LeanResponse): string {
  return (response.gzip ? gunzipSync(response.raw) : response.raw).toString('utf8');
}

/**
 * The bytes node:http sends for the same call: the caller's headers in order, then Host and
 * Connection: keep-alive (and Content-Length when there is a body).
 */
export function buildRequest(url: string, method: 'GET' | 'POST', path: string, headers: Record<string, string>, body?: string): Buffer {
  const host = assertLoopbackUrl(url).host;
  let head = `${method} ${path} HTTP/1.1\r\n`;
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  if (body !== undefined) head += `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n`;
  head += `Host: ${host}\r\nConnection: keep-alive\r\n\r\n`;
  return Buffer.from(body === undefined ? head : head + body, 'utf8');
}

const MAX_HEAD_BYTES = 64 * 1024;
const MAX_BODY_BYTES = 64 * 1024 * 1024;

interface InFlight {
  startedAt: bigint;
  resolve: (response: LeanResponse) => void;
  reject: (error: Error) => void;
}

/** Parse state of the answer being read. */
interface Reading {
  head: Buffer | undefined;
  status: number;
  gzip: boolean;
  closeAfter: boolean;
  /** Content-Length, or -1 for chunked. */
  length: number;
  chunks: Buffer[];
  received: number;
  /** Chunked only: raw bytes not decoded yet. */
  chunkedRest: Buffer | undefined;
}

/** One keep-alive connection. `request` reconnects when the previous socket was closed. */
export class LeanHttpConnection {
  private socket: net.Socket | undefined;
  private inFlight: InFlight | undefined;
  private reading: Reading | undefined;
  private readonly host: string;
  private readonly port: number;

  constructor(
    url: string,
    private readonly timeoutMs: number,
  ) {
    const parsed = assertLoopbackUrl(url);
    this.host = parsed.hostname;
    this.port = Number(parsed.port || 80);
  }

  request(bytes: Buffer): Promise<LeanResponse> {
    if (this.inFlight !== undefined) return Promise.reject(new Error('a request is already in flight on this connection'));
    const socket = this.socket ?? this.open();
    return new Promise((resolve, reject) => {
      this.inFlight = { startedAt: process.hrtime.bigint(), resolve, reject };
      this.reading = { head: undefined, status: 0, gzip: false, closeAfter: false, length: 0, chunks: [], received: 0, chunkedRest: undefined };
      socket.write(bytes);
    });
  }

  close(): void {
    this.socket?.destroy();
    this.socket = undefined;
  }

  private open(): net.Socket {
    const socket = net.connect({ host: this.host, port: this.port });
    socket.setNoDelay(true);
    // Inactivity, as node:http's `timeout` option: nothing received for this long fails the request.
    socket.setTimeout(this.timeoutMs);
    socket.on('timeout', () => this.abort(socket, new Error(`timeout after ${this.timeoutMs} ms`)));
    socket.on('data', (chunk: Buffer) => this.receive(socket, chunk));
    socket.on('error', (error: Error) => this.abort(socket, error));
    socket.on('close', () => this.abort(socket, new Error('socket hang up')));
    this.socket = socket;
    return socket;
  }

  private abort(socket: net.Socket, error: Error): void {
    socket.destroy();
    // A socket already replaced (closed after `Connection: close`) has no request of its own.
    if (this.socket !== socket) return;
    this.socket = undefined;
    const request = this.inFlight;
    this.inFlight = undefined;
    this.reading = undefined;
    request?.reject(error);
  }

  private receive(socket: net.Socket, chunk: Buffer): void {
    const reading = this.reading;
    if (reading === undefined || this.inFlight === undefined) {
      this.abort(socket, new Error('bytes received with no request in flight'));
      return;
    }
    let data = chunk;
    if (reading.status === 0) {
      const sofar = reading.head === undefined ? data : Buffer.concat([reading.head, data]);
      const headEnd = sofar.indexOf('\r\n\r\n');
      if (headEnd < 0) {
        if (sofar.length > MAX_HEAD_BYTES) this.abort(socket, new Error('response head too long'));
        else reading.head = sofar;
        return;
      }
      const problem = parseHead(sofar.toString('latin1', 0, headEnd), reading);
      if (problem !== undefined) {
        this.abort(socket, new Error(problem));
        return;
      }
      reading.head = undefined;
      data = sofar.subarray(headEnd + 4);
    }
    const done = reading.length >= 0 ? this.readLength(reading, data) : this.readChunked(reading, data);
    if (done === 'error') {
      this.abort(socket, new Error('malformed response body'));
      return;
    }
    if (!done) return;
    const request = this.inFlight;
    this.inFlight = undefined;
    this.reading = undefined;
    const latencyMs = Number(process.hrtime.bigint() - request.startedAt) / 1e6;
    if (reading.closeAfter) {
      socket.destroy();
      if (this.socket === socket) this.socket = undefined;
    }
    const raw = reading.chunks.length === 1 ? (reading.chunks[0] as Buffer) : Buffer.concat(reading.chunks);
    request.resolve({ status: reading.status, raw, gzip: reading.gzip, latencyMs });
  }

  private readLength(reading: Reading, data: Buffer): boolean | 'error' {
    if (data.length > 0) {
      reading.chunks.push(data);
      reading.received += data.length;
    }
    if (reading.received > reading.length) return 'error';
    return reading.received === reading.length;
  }

  /** Decodes `size\r\n data \r\n` chunks up to the last (`0\r\n\r\n`, no trailers expected). */
  private readChunked(reading: Reading, data: Buffer): boolean | 'error' {
    let buffer = reading.chunkedRest === undefined ? data : Buffer.concat([reading.chunkedRest, data]);
    reading.chunkedRest = undefined;
    for (;;) {
      const lineEnd = buffer.indexOf('\r\n');
      if (lineEnd < 0) break;
      const size = Number.parseInt(buffer.toString('latin1', 0, lineEnd), 16);
      if (!Number.isFinite(size) || size < 0) return 'error';
      if (size === 0) {
        if (buffer.length < lineEnd + 4) break;
        return buffer.length === lineEnd + 4 ? true : 'error';
      }
      const end = lineEnd + 2 + size;
      if (buffer.length < end + 2) break;
      reading.chunks.push(buffer.subarray(lineEnd + 2, end));
      reading.received += size;
      if (reading.received > MAX_BODY_BYTES) return 'error';
      buffer = buffer.subarray(end + 2);
    }
    if (buffer.length > 0) reading.chunkedRest = buffer;
    return false;
  }
}

/** Fills status, framing and encoding from the head; returns a problem, or undefined. */
function parseHead(head: string, reading: Reading): string | undefined {
  if (!head.startsWith('HTTP/1.1 ')) return `not an HTTP/1.1 answer: ${head.slice(0, 20)}`;
  reading.status = Number(head.slice(9, 12));
  if (!Number.isInteger(reading.status) || reading.status < 100) return 'bad status line';
  let length = -2;
  for (const line of head.split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim().toLowerCase();
    if (name === 'content-length') length = Number(value);
    else if (name === 'transfer-encoding' && value === 'chunked') length = -1;
    else if (name === 'content-encoding') reading.gzip = value === 'gzip';
    else if (name === 'connection') reading.closeAfter = value === 'close';
  }
  if (length === -2) return 'answer with neither Content-Length nor chunked encoding';
  if (length > MAX_BODY_BYTES || Number.isNaN(length)) return 'bad Content-Length';
  reading.length = length;
  return undefined;
}
