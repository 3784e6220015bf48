/**
 * A minimal HTTP client on node:http, shared by the REST load and by hub control calls
 * (/ready, /metrics, /debug/gc). Only loopback targets are allowed: the bench must never send
 * traffic anywhere else.
 */
import http from 'node:http';
import { gunzipSync } from 'node:zlib';

export interface HttpRequest {
  method: 'GET' | 'POST';
  url: string;
  headers?: Record<string, string>;
  body?: string;
  agent?: http.Agent;
  timeoutMs: number;
  /** Sends `Accept-Encoding: gzip` and decompresses a gzip answer, as browsers do. */
  acceptGzip?: boolean;
}

export interface HttpResponse {
  status: number;
  body: string;
  /** Body bytes as received (compressed, when the answer was). */
  wireBytes: number;
  /** Time from issuing the request to the last byte of the body, in milliseconds. */
  latencyMs: number;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

export function assertLoopbackUrl(url: string): URL {
  const parsed = new URL(url);
  if (parsed.protocol !== 'http:') throw new Error(`only http:// URLs are supported, got ${url}`);
  if (!LOOPBACK_HOSTS.has(parsed.hostname)) {
    throw new Error(`refusing to send load to ${parsed.hostname}: the bench only targets 127.0.0.1`);
  }
  return parsed;
}

export function httpRequest(request: HttpRequest): Promise<HttpResponse> {
  const url = new URL(request.url);
  const headers: Record<string, string> = { ...request.headers };
  if (request.acceptGzip) headers['accept-encoding'] = 'gzip';
  if (request.body !== undefined) {
    headers['content-type'] ??= 'application/json';
    headers['content-length'] = String(Buffer.byteLength(request.body));
  }
  return new Promise((resolve, reject) => {
    const startedAt = process.hrtime.bigint();
    const req = http.request(
      {
        method: request.method,
        hostname: url.hostname,
        port: url.port,
        path: `${url.pathname}${url.search}`,
        headers,
        agent: request.agent,
        timeout: request.timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const latencyMs = Number(process.hrtime.bigint() - startedAt) / 1e6;
          const raw = Buffer.concat(chunks);
          try {
            const body = res.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
            resolve({ status: res.statusCode ?? 0, body: body.toString('utf8'), wireBytes: raw.byteLength, latencyMs });
          } catch (error) {
            reject(error instanceof Error ? error : new Error(String(error)));
          }
        });
      },
    );
    // `timeout` only reports socket inactivity; destroying turns it into a rejected promise.
    req.on('timeout', () => req.destroy(new Error(`timeout after ${request.timeoutMs} ms`)));
    req.on('error', reject);
    req.end(request.body);
  });
}

/** The `error.code` of a hub error body (`{"error": {"code", "message"}}`), if there is one. */
export function errorCodeOf(body: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(body);
    if (isRecord(parsed) && isRecord(parsed.error) && typeof parsed.error.code === 'string') return parsed.error.code;
  } catch {
    // Not JSON: the caller reports the status alone.
  }
  return undefined;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
