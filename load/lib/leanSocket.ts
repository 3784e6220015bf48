/**
 * A lean tracker client for the bulk tabs: Socket.IO v5 over engine.io v4 over a WebSocket, spoken
 * directly on a `net` socket, with the upgrade request and the frames the tab sends built once.
 *
 * Why: a socket.io-client tab (Manager, engine.io-client Socket and transport, `ws` WebSocket with
 * its `http.request` upgrade, Receiver and Sender, per-socket ping timers) costs the generator
 * about as much CPU per connect as the hub, on the same two cores (docs/performance.md, "gen").
 * 19,000 real tabs run in 19,000 browsers, not next to the hub, so that cost is an artefact.
 *
 * What the hub sees is the same as from socket.io-client (test/load.leanTracker.test.ts compares
 * the bytes): the same upgrade request, header for header (only the random Sec-WebSocket-Key
 * differs), then `40` (CONNECT to the main namespace, no auth), `3` for every engine.io ping,
 * `42[...]` events, `41` and a close frame on disconnect. Frames are masked, as RFC 6455 requires
 * of clients, with a zero key: the server unmasks them the same way, and the payload need not be
 * copied and XORed on this side.
 *
 * Not done, on purpose: the client-side ping timeout (the hub closing or resetting the socket is
 * seen at once; a hub that stops answering while keeping the socket open is not), reconnection,
 * binary packets, acknowledgements, namespaces other than the main one.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { frameHeaderAt } from '../../src/live/wsFrames';

export interface LeanTabOptions {
  /** e.g. http://127.0.0.1:3000 */
  url: string;
  /** Socket.IO path, e.g. /ws-assist/socket */
  path: string;
  /** Handshake query, in the order socket.io-client sends it (before EIO and transport). */
  query: Record<string, string>;
  /** Extra upgrade headers (the tracker's User-Agent), sent first as engine.io-client does. */
  headers: Record<string, string>;
  timeoutMs: number;
  /** Event listeners, attached before the handshake: an event sent with the CONNECT answer is not missed. */
  on?: Record<string, LeanEventListener>;
}

export type LeanEventListener = (args: unknown[]) => void;

/** Why a connected lean socket ended, in socket.io-client's words. */
export type LeanDisconnectReason = 'io server disconnect' | 'transport close' | 'transport error' | 'io client disconnect';

export class LeanSocketError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LeanSocketError';
  }
}

const OPCODE_CONTINUATION = 0x0;
const OPCODE_TEXT = 0x1;
const OPCODE_BINARY = 0x2;
const OPCODE_CLOSE = 0x8;
const OPCODE_PING = 0x9;
/** Nothing the hub sends a tracker comes near this; a larger frame is a protocol error here. */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
const MAX_RESPONSE_HEAD_BYTES = 16 * 1024;

/** A client text frame (FIN, opcode 1), masked with a zero key: header and payload in one buffer. */
export function encodeTextFrame(text: string): Buffer {
  const length = Buffer.byteLength(text);
  const headerLength = length < 126 ? 6 : length < 65_536 ? 8 : 14;
  const frame = Buffer.allocUnsafe(headerLength + length);
  frame[0] = 0x80 | OPCODE_TEXT;
  if (length < 126) {
    frame[1] = 0x80 | length;
  } else if (length < 65_536) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeUInt32BE(0, 2);
    frame.writeUInt32BE(length, 6);
  }
  frame.writeUInt32BE(0, headerLength - 4);
  frame.write(text, headerLength, 'utf8');
  return frame;
}

function encodeControlFrame(opcode: number, payload: Buffer): Buffer {
  const frame = Buffer.alloc(6 + payload.length);
  frame[0] = 0x80 | opcode;
  frame[1] = 0x80 | payload.length;
  payload.copy(frame, 6);
  return frame;
}

/** Engine.io pong, Socket.IO CONNECT and DISCONNECT for the main namespace, and a normal close: the same bytes for every tab. */
const PONG_FRAME = encodeTextFrame('3');
const CONNECT_FRAME = encodeTextFrame('40');
const DISCONNECT_FRAME = encodeTextFrame('41');
const CLOSE_FRAME = encodeControlFrame(OPCODE_CLOSE, Buffer.from([0x03, 0xe8]));
const DISCONNECT_AND_CLOSE = Buffer.concat([DISCONNECT_FRAME, CLOSE_FRAME]);

/**
 * The upgrade request engine.io-client 6 (through `ws` 8 and node:http) sends for
 * `io(url, { path, transports: ['websocket'], query, extraHeaders })`: the query encoded with
 * encodeURIComponent and followed by EIO and transport, a trailing slash after the path, the
 * extra headers first, then ws's own, then Host.
 */
export function upgradeRequest(options: Pick<LeanTabOptions, 'url' | 'path' | 'query' | 'headers'>, key: string): string {
  const url = new URL(options.url);
  let query = '';
  for (const [name, value] of Object.entries({ ...options.query, EIO: '4', transport: 'websocket' })) {
    query += `${query === '' ? '' : '&'}${encodeURIComponent(name)}=${encodeURIComponent(value)}`;
  }
  const path = options.path.endsWith('/') ? options.path : `${options.path}/`;
  let head = `GET ${path}?${query} HTTP/1.1\r\n`;
  for (const [name, value] of Object.entries(options.headers)) head += `${name}: ${value}\r\n`;
  head +=
    'Sec-WebSocket-Version: 13\r\n' +
    `Sec-WebSocket-Key: ${key}\r\n` +
    'Connection: Upgrade\r\n' +
    'Upgrade: websocket\r\n' +
    'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n' +
    `Host: ${url.host}\r\n\r\n`;
  return head;
}

/** Random Sec-WebSocket-Keys drawn from one pooled buffer (16 random bytes each, base64). */
let keyPool = Buffer.alloc(0);
let keyOffset = 0;
function nextWebSocketKey(): string {
  if (keyOffset + 16 > keyPool.length) {
    keyPool = randomBytes(16 * 1024);
    keyOffset = 0;
  }
  const key = keyPool.toString('base64', keyOffset, keyOffset + 16);
  keyOffset += 16;
  return key;
}

type State = 'upgrading' | 'opening' | 'connected' | 'closed';

/** One tab. Create it with {@link openLeanSocket}. */
export class LeanSocket {
  private state: State = 'upgrading';
  /** Bytes received and not parsed yet (a partial head or frame). */
  private pending: Buffer | undefined;
  /** Payloads of a fragmented message so far. */
  private fragments: Buffer[] | undefined;
  private readonly listeners = new Map<string, LeanEventListener>();
  private onDisconnect: ((reason: LeanDisconnectReason) => void) | undefined;
  private settle: ((error: Error | undefined) => void) | undefined;

  constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', () => this.end('transport error'));
    socket.on('close', () => this.end('transport close'));
  }

  get connected(): boolean {
    return this.state === 'connected';
  }

  /** One listener per event name (the fleet needs no more); its args are parsed only when it exists. */
  on(event: string, listener: LeanEventListener): void {
    this.listeners.set(event, listener);
  }

  /** Called once when a connected socket ends, unless the end was asked for by disconnect/drop. */
  onceDisconnected(listener: (reason: LeanDisconnectReason) => void): void {
    this.onDisconnect = listener;
  }

  /** Sends `42["event", data]`, as socket.io-client's `emit(event, data)` does. */
  emit(event: string, data: unknown): void {
    if (this.state !== 'connected') return;
    this.socket.write(encodeTextFrame(`42${JSON.stringify([event, data])}`));
  }

  /** A polite leave: Socket.IO DISCONNECT, a WebSocket close frame, then FIN. */
  disconnect(): void {
    if (this.state === 'closed') return;
    const wasOpen = this.state === 'connected';
    this.state = 'closed';
    this.onDisconnect = undefined;
    if (wasOpen) this.socket.end(DISCONNECT_AND_CLOSE);
    else this.socket.destroy();
  }

  /** An abrupt drop: the TCP socket destroyed, no close frame, no DISCONNECT (a network cut). */
  drop(): void {
    this.state = 'closed';
    this.onDisconnect = undefined;
    this.socket.destroy();
  }

  /** Settles when the hub has answered CONNECT (or refused it, or the socket ended first). */
  waitConnected(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new LeanSocketError('connect timeout')), timeoutMs);
      this.settle = (error) => {
        clearTimeout(timer);
        this.settle = undefined;
        if (error === undefined) resolve();
        else reject(error);
      };
    });
  }

  private fail(error: Error): void {
    const settle = this.settle;
    this.state = 'closed';
    this.socket.destroy();
    settle?.(error);
  }

  private end(reason: LeanDisconnectReason): void {
    if (this.settle !== undefined) {
      this.fail(new LeanSocketError(reason === 'transport error' ? 'websocket error' : reason));
      return;
    }
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.socket.destroy();
    const listener = this.onDisconnect;
    this.onDisconnect = undefined;
    listener?.(reason);
  }

  private receive(chunk: Buffer): void {
    let data = this.pending === undefined ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = undefined;
    if (this.state === 'upgrading') {
      const headEnd = data.indexOf('\r\n\r\n');
      if (headEnd < 0) {
        if (data.length > MAX_RESPONSE_HEAD_BYTES) this.fail(new LeanSocketError('upgrade answer head too long'));
        else this.pending = data;
        return;
      }
      // `HTTP/1.1 101 Switching Protocols`: the status is always at bytes 9-11.
      const status = data.toString('latin1', 9, 12);
      if (status !== '101') {
        this.fail(new LeanSocketError(`unexpected server response: ${status}`));
        return;
      }
      this.state = 'opening';
      this.socket.setNoDelay(true);
      data = data.subarray(headEnd + 4);
    }
    let offset = 0;
    while (offset < data.length && this.state !== 'closed') {
      const frame = readFrame(data, offset);
      if (frame === undefined) break;
      if (frame === 'too large') {
        this.fail(new LeanSocketError('frame too large'));
        return;
      }
      offset = frame.end;
      this.onFrame(frame.opcode, frame.fin, data.subarray(frame.payloadStart, frame.end));
    }
    if (offset < data.length && this.state !== 'closed') this.pending = data.subarray(offset);
  }

  private onFrame(opcode: number, fin: boolean, payload: Buffer): void {
    if (opcode === OPCODE_PING) {
      this.socket.write(encodeControlFrame(0xa, payload));
      return;
    }
    if (opcode === OPCODE_CLOSE) {
      this.end('transport close');
      return;
    }
    if (opcode === OPCODE_TEXT || opcode === OPCODE_BINARY || opcode === OPCODE_CONTINUATION) {
      if (!fin || this.fragments !== undefined) {
        // Payloads are views of a chunk that later reads may not keep: copy them.
        (this.fragments ??= []).push(Buffer.from(payload));
        if (!fin) return;
        const whole = Buffer.concat(this.fragments);
        this.fragments = undefined;
        this.onMessage(whole.toString('utf8'));
        return;
      }
      this.onMessage(payload.toString('utf8'));
    }
  }

  /** One engine.io packet: `0` open, `1` close, `2` ping, `4` message (a Socket.IO packet), `6` noop. */
  private onMessage(message: string): void {
    const type = message.charCodeAt(0);
    if (type === 0x32 /* 2: ping */) {
      this.socket.write(PONG_FRAME);
    } else if (type === 0x34 /* 4: message */) {
      this.onSocketIoPacket(message);
    } else if (type === 0x30 /* 0: open */) {
      if (this.state === 'opening') this.socket.write(CONNECT_FRAME);
    } else if (type === 0x31 /* 1: close */) {
      this.end('transport close');
    }
  }

  /** `40{sid}` CONNECT answered, `44{message}` refused, `41` disconnected by the hub, `42[...]` an event. */
  private onSocketIoPacket(message: string): void {
    const type = message.charCodeAt(1);
    if (type === 0x32 /* 2: event */) {
      if (this.state !== 'connected') return;
      // `42["NAME"...`: the name is looked up before anything is parsed.
      const nameEnd = message.indexOf('"', 4);
      const name = message.charCodeAt(2) === 0x5b && nameEnd > 4 ? message.slice(4, nameEnd) : undefined;
      const listener = name === undefined ? undefined : this.listeners.get(name);
      if (listener === undefined) return;
      const parsed: unknown = JSON.parse(message.slice(2));
      if (Array.isArray(parsed)) listener(parsed.slice(1));
    } else if (type === 0x30 /* 0: connect */) {
      if (this.state !== 'opening') return;
      this.state = 'connected';
      this.settle?.(undefined);
    } else if (type === 0x34 /* 4: connect error */) {
      this.fail(new LeanSocketError(connectErrorMessage(message.slice(2))));
    } else if (type === 0x31 /* 1: disconnect */) {
      this.end('io server disconnect');
    }
  }
}

function connectErrorMessage(json: string): string {
  try {
    const parsed: unknown = JSON.parse(json);
    if (typeof parsed === 'object' && parsed !== null && typeof (parsed as { message?: unknown }).message === 'string') {
      return (parsed as { message: string }).message;
    }
  } catch {
    // not JSON: fall through
  }
  return 'connect_error';
}

interface FrameBounds {
  opcode: number;
  fin: boolean;
  payloadStart: number;
  end: number;
}

/** Bounds of the frame starting at `offset`, undefined when it is not complete yet. Server frames are unmasked. */
function readFrame(data: Buffer, offset: number): FrameBounds | 'too large' | undefined {
  const frame = frameHeaderAt(data, offset);
  if (frame === undefined || frame === 'too large') return frame;
  // Checked before the payload is all there: a huge length is refused at once, not waited for.
  if (frame.payloadLength > MAX_MESSAGE_BYTES) return 'too large';
  if (frame.end > data.length) return undefined;
  // A masked server frame is wrong, but its key is skipped (payloadStart is past it).
  return { opcode: frame.opcode, fin: frame.fin, payloadStart: frame.payloadStart, end: frame.end };
}

/** Opens one tab: resolves once the hub has accepted its Socket.IO CONNECT; rejects and closes it otherwise. */
export async function openLeanSocket(options: LeanTabOptions): Promise<LeanSocket> {
  const url = new URL(options.url);
  const request = upgradeRequest(options, nextWebSocketKey());
  const tcp = net.connect({ host: url.hostname, port: Number(url.port) });
  tcp.once('connect', () => tcp.write(request, 'latin1'));
  const socket = new LeanSocket(tcp);
  for (const [event, listener] of Object.entries(options.on ?? {})) socket.on(event, listener);
  await socket.waitConnected(options.timeoutMs);
  // The hub may refuse a tab right after accepting it (SESSION_ALREADY_CONNECTED, then DISCONNECT)
  // in the same read as the CONNECT answer.
  if (!socket.connected) throw new LeanSocketError('disconnected right after connect');
  return socket;
}
