/** Guards of the `/api/v1/:projectKey/...` routes: the project key's shape and length, then the API key. */
import type { HubContext } from '../context';
import { ErrorCode, HubError } from '../errors';
import { PROJECT_KEY_PATTERN } from '../protocol';

/**
 * Refuses a malformed project key before any work is spent on it (hashing the API key included),
 * then a missing, unknown or not-allowed API key. Returns the id of the key that was let in.
 */
export function checkAccess(ctx: HubContext, authorization: string | undefined, projectKey: string): number {
  if (!PROJECT_KEY_PATTERN.test(projectKey)) {
    throw new HubError(ErrorCode.BAD_REQUEST, 'projectKey: expected 1 to 256 letters, digits, "_" or "-"');
  }
  // Held to the length trackers are held to (PROJECT_KEY_LENGTH, 0 = any): no tracker can be in a project of another length.
  const length = ctx.config.projectKeyLength;
  if (length > 0 && projectKey.length !== length) {
    throw new HubError(ErrorCode.BAD_REQUEST, `projectKey: must be ${length} characters (PROJECT_KEY_LENGTH), not ${projectKey.length}`);
  }
  const { check, keyId } = ctx.apiKeys.match(authorization, projectKey);
  switch (check) {
    case 'ok':
      return keyId;
    case 'missing':
      throw new HubError(ErrorCode.UNAUTHORIZED, 'missing API key: send it in the Authorization header');
    case 'invalid':
      throw new HubError(ErrorCode.UNAUTHORIZED, 'invalid API key');
    case 'forbidden':
      throw new HubError(ErrorCode.FORBIDDEN, 'this API key is not allowed for this project');
  }
}
