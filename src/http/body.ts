/**
 * Reading a request body as JSON, bounded: the declared length is checked before reading, the
 * bytes read are counted while reading, and a body past the limit is refused without being kept.
 */
import type { IncomingMessage } from 'node:http';
import { ErrorCode, HubError } from '../errors';

/** A failure that leaves the rest of the body unread: the connection closes after the answer. */
const CLOSE = { Connection: 'close' } as const;

function tooLarge(limit: number): HubError {
  return new HubError(ErrorCode.PAYLOAD_TOO_LARGE, `request body exceeds the limit of ${limit} bytes`, undefined, CLOSE);
}

/** Only UTF-8 (the JSON default) and no content coding: anything else is refused, not guessed at. */
function checkEncoding(req: IncomingMessage): void {
  const coding = req.headers['content-encoding']?.trim().toLowerCase();
  if (coding && coding !== 'identity') {
    throw new HubError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, `unsupported content encoding "${coding}"`, undefined, CLOSE);
  }
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(req.headers['content-type'] ?? '')?.[1]?.toLowerCase();
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    throw new HubError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, `unsupported charset "${charset.toUpperCase()}"`, undefined, CLOSE);
  }
}

/** The body as text; rejects with a HubError when it is too large or not UTF-8 JSON-able text. */
export function readBodyText(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    try {
      checkEncoding(req);
    } catch (error) {
      reject(error);
      return;
    }
    const declared = Number(req.headers['content-length']);
    if (declared > limit) {
      reject(tooLarge(limit));
      return;
    }
    const chunks: Buffer[] = [];
    let received = 0;
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received > limit) {
        cleanup();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      const [only] = chunks;
      resolve(chunks.length === 1 && only ? only.toString('utf8') : Buffer.concat(chunks, received).toString('utf8'));
    };
    // An aborted upload has nobody to answer: the promise settles so that nothing waits on it.
    const onAbort = (): void => {
      cleanup();
      reject(new HubError(ErrorCode.BAD_REQUEST, 'request aborted', 400, CLOSE));
    };
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('aborted', onAbort);
      req.off('error', onAbort);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('aborted', onAbort);
    req.on('error', onAbort);
  });
}

/** A body's text as JSON; an empty body is `{}` (`curl -X POST` with no data means "no filters"). */
export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new HubError(ErrorCode.BAD_REQUEST, 'request body is not valid JSON');
  }
}
