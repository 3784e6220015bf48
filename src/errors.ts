/**
 * Every error code the hub returns, over REST and on sockets. Clients and tests match on the code,
 * never on the message text.
 */
export const ErrorCode = {
  BAD_REQUEST: 'BAD_REQUEST',
  INVALID_FILTER: 'INVALID_FILTER',
  UNAUTHORIZED: 'UNAUTHORIZED',
  FORBIDDEN: 'FORBIDDEN',
  NOT_FOUND: 'NOT_FOUND',
  METHOD_NOT_ALLOWED: 'METHOD_NOT_ALLOWED',
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  RATE_LIMITED: 'RATE_LIMITED',
  NOT_READY: 'NOT_READY',
  INTERNAL: 'INTERNAL',
  TOO_MANY_SUBSCRIPTIONS: 'TOO_MANY_SUBSCRIPTIONS',
  UNKNOWN_SUBSCRIPTION: 'UNKNOWN_SUBSCRIPTION',
  // Socket refusals and notices (connect_error data, acks, error events); see docs/protocol-notes.md.
  TOO_MANY_TABS: 'TOO_MANY_TABS',
  TOO_MANY_CONNECTIONS: 'TOO_MANY_CONNECTIONS',
  SLOW_CONSUMER: 'SLOW_CONSUMER',
  TOKEN_EXPIRED: 'TOKEN_EXPIRED',
  SUBSCRIPTION_TAKEN_OVER: 'SUBSCRIPTION_TAKEN_OVER',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface ErrorBody {
  code: ErrorCode;
  message: string;
}

/** An expected failure with a code and a message that is safe to show a client. */
export class HubError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly status: number = statusOf(code),
    /** Response headers that go with it over HTTP (e.g. Retry-After). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = 'HubError';
  }

  toBody(): ErrorBody {
    return { code: this.code, message: this.message };
  }
}

export function statusOf(code: ErrorCode): number {
  switch (code) {
    case ErrorCode.BAD_REQUEST:
    case ErrorCode.INVALID_FILTER:
    case ErrorCode.TOO_MANY_SUBSCRIPTIONS:
    case ErrorCode.UNKNOWN_SUBSCRIPTION:
      return 400;
    case ErrorCode.UNAUTHORIZED:
      return 401;
    case ErrorCode.FORBIDDEN:
      return 403;
    case ErrorCode.NOT_FOUND:
      return 404;
    case ErrorCode.METHOD_NOT_ALLOWED:
      return 405;
    case ErrorCode.UNSUPPORTED_MEDIA_TYPE:
      return 415;
    case ErrorCode.PAYLOAD_TOO_LARGE:
      return 413;
    case ErrorCode.RATE_LIMITED:
    case ErrorCode.TOO_MANY_TABS:
    case ErrorCode.TOO_MANY_CONNECTIONS:
      return 429;
    case ErrorCode.TOKEN_EXPIRED:
      return 401;
    case ErrorCode.SUBSCRIPTION_TAKEN_OVER:
      return 409;
    case ErrorCode.SLOW_CONSUMER:
      return 503;
    case ErrorCode.NOT_READY:
      return 503;
    case ErrorCode.INTERNAL:
      return 500;
  }
}
