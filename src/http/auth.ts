/** Guards of the `/api/v1/:projectKey/...` routes: the project key's shape, then the API key. */
import type { HubContext } from '../context';
import { ErrorCode, HubError } from '../errors';
import { PROJECT_KEY_PATTERN } from '../protocol';

/**
 * Refuses a malformed project key before any work is spent on it (hashing the API key included),
 * then a missing, unknown or not-allowed API key.
 */
export function checkAccess(ctx: HubContext, authorization: string | undefined, projectKey: string): void {
  if (!PROJECT_KEY_PATTERN.test(projectKey)) {
    throw new HubError(ErrorCode.BAD_REQUEST, 'projectKey: expected 1 to 256 letters, digits, "_" or "-"');
  }
  switch (ctx.apiKeys.check(authorization, projectKey)) {
    case 'ok':
      return;
    case 'missing':
      throw new HubError(ErrorCode.UNAUTHORIZED, 'missing API key: send it in the Authorization header');
    case 'invalid':
      throw new HubError(ErrorCode.UNAUTHORIZED, 'invalid API key');
    case 'forbidden':
      throw new HubError(ErrorCode.FORBIDDEN, 'this API key is not allowed for this project');
  }
}
