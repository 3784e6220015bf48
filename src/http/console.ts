/**
 * The live console's static files (`/console`, built from console/ into dist/console by
 * scripts/build.mjs) and its one dynamic answer, `/console/config.json` (the Socket.IO path the
 * page connects to). A fixed set of files, read on each request (a few kB; a rebuild shows at
 * once); a strict Content-Security-Policy: the page loads nothing but its own files and talks only
 * to this origin. Off with CONSOLE=false (then these paths answer the JSON 404).
 */
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join, resolve } from 'node:path';
import type { HubContext } from '../context';
import { ErrorCode, HubError } from '../errors';
import { sendError } from './errors';

/** Where the build puts the console: <package>/dist/console, from src/http or dist/http alike. */
export const CONSOLE_DIR = resolve(__dirname, '..', '..', 'dist', 'console');

const FILES: Readonly<Record<string, string>> = {
  '': 'index.html',
  'index.html': 'index.html',
  'app.js': 'app.js',
  'app.js.map': 'app.js.map',
  'style.css': 'style.css',
  'icon.svg': 'icon.svg',
};

const JSON_TYPE = 'application/json; charset=utf-8';

const TYPES: Readonly<Record<string, string>> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  map: 'application/json; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
  json: JSON_TYPE,
};

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-cache',
};

/** The file a console path names (`''` = the page), or undefined when it is not a console path. */
export function consoleFile(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  const queryAt = url.indexOf('?');
  const path = queryAt < 0 ? url : url.slice(0, queryAt);
  if (path === '/console') return '';
  if (!path.startsWith('/console/')) return undefined;
  return path.slice('/console/'.length);
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, head: boolean): void {
  res.statusCode = status;
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) res.setHeader(name, value);
  res.setHeader('Content-Type', type);
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(head ? undefined : body);
}

/** Answers a console path (see `consoleFile`). */
export function consoleHandler(ctx: HubContext, dir = CONSOLE_DIR): (req: IncomingMessage, res: ServerResponse, file: string) => void {
  return (req, res, file) => {
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) {
      return sendError(res, new HubError(ErrorCode.METHOD_NOT_ALLOWED, 'the console answers GET only', 405, { Allow: 'GET, HEAD' }));
    }
    // `/console` → `/console/`: the page's files are relative to it.
    if (req.url?.split('?', 1)[0] === '/console') {
      const query = req.url.slice('/console'.length);
      res.writeHead(308, { Location: `/console/${query}`, 'Content-Length': 0 }).end();
      return;
    }
    if (file === 'config.json') {
      return send(res, 200, JSON_TYPE, JSON.stringify({ wsPath: ctx.config.wsPath }), head);
    }
    const name = FILES[file];
    if (name === undefined) return sendError(res, new HubError(ErrorCode.NOT_FOUND, `no console file ${JSON.stringify(file.slice(0, 100))}`));
    readFile(join(dir, name)).then(
      (body) => send(res, 200, TYPES[name.slice(name.lastIndexOf('.') + 1)] ?? 'application/octet-stream', body, head),
      () => sendError(res, new HubError(ErrorCode.NOT_READY, 'the console is not built: run `npm run build` (or set CONSOLE=false)', 503)),
    );
  };
}
