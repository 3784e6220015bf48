/** Guards of the `/api/v1/:projectKey/...` routes: the project key's shape, then the API key. */
import type { RequestHandler } from 'express';
import type { HubContext } from '../context';
import { ErrorCode, HubError } from '../errors';
import { PROJECT_KEY_PATTERN } from '../protocol';

export type ProjectParams = { projectKey: string };

/** Rejects malformed project keys before any work is spent on them (hashing the API key included). */
export const checkProjectKey: RequestHandler<ProjectParams> = (req, _res, next) => {
  if (!PROJECT_KEY_PATTERN.test(req.params.projectKey)) {
    return next(new HubError(ErrorCode.BAD_REQUEST, 'projectKey: expected 1 to 256 letters, digits, "_" or "-"'));
  }
  next();
};

export function requireApiKey(ctx: HubContext): RequestHandler<ProjectParams> {
  return (req, _res, next) => {
    switch (ctx.apiKeys.check(req.headers.authorization, req.params.projectKey)) {
      case 'ok':
        return next();
      case 'missing':
        return next(new HubError(ErrorCode.UNAUTHORIZED, 'missing API key: send it in the Authorization header'));
      case 'invalid':
        return next(new HubError(ErrorCode.UNAUTHORIZED, 'invalid API key'));
      case 'forbidden':
        return next(new HubError(ErrorCode.FORBIDDEN, 'this API key is not allowed for this project'));
    }
  };
}
