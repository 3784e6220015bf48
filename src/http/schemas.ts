/**
 * Request schemas of the public REST API: what the session routes validate with, and what the
 * OpenAPI document (openapi.ts) is generated from, so the two cannot drift. Every schema is strict:
 * an unknown field or query parameter is refused with its name and the known one it is close to.
 */
import { z } from 'zod';
import { FILTER_ATTRIBUTES, QUERY_LIMITS, searchOptionShape, strictSearchBodySchema } from '../sessions/query';

export const AUTOCOMPLETE_LIMITS = { defaultLimit: 50, maxLimit: 200 } as const;

const FILTER_TYPES = Object.keys(FILTER_ATTRIBUTES).join(', ');

/** The search body (POST). */
export const searchBodySchema = strictSearchBodySchema;

/** The list's query string (GET): the search's options, and `userId` for a USERID `contains` filter. */
export const listQuerySchema = z.strictObject({
  ...searchOptionShape,
  userId: z
    .string()
    .max(QUERY_LIMITS.maxValueLength)
    .optional()
    .meta({ description: 'only sessions whose userId contains this, case-insensitively' }),
});

/** Autocomplete's query string. */
export const autocompleteQuerySchema = z
  .strictObject({
    type: z
      .string({ error: `required; expected one of ${FILTER_TYPES}` })
      .transform((t) => t.toUpperCase())
      .refine((t) => Object.hasOwn(FILTER_ATTRIBUTES, t), { message: `unknown; expected one of ${FILTER_TYPES}` })
      .meta({ description: 'the attribute (a filter type, case-insensitive)', examples: ['USERID'] }),
    source: z.string().max(QUERY_LIMITS.maxValueLength).optional().meta({ description: 'the metadata key (METADATA only, required there)' }),
    q: z.string().max(QUERY_LIMITS.maxValueLength).optional().meta({ description: 'only values containing this, case-insensitively (default: every value)' }),
    limit: z
      .string()
      .regex(/^\d{1,9}$/, 'must be an integer')
      .transform(Number)
      .pipe(z.number().int().min(1).max(AUTOCOMPLETE_LIMITS.maxLimit))
      .optional()
      .meta({ description: `values at most, 1 to ${AUTOCOMPLETE_LIMITS.maxLimit} (default ${AUTOCOMPLETE_LIMITS.defaultLimit})` }),
  })
  .superRefine((query, ctx) => {
    if (query.type === 'METADATA' && query.source === undefined) {
      ctx.addIssue({ code: 'custom', path: ['source'], message: 'required for METADATA (the metadata key)' });
    }
  });

/** The one-session route takes no query parameter. */
export const sessionQuerySchema = z.strictObject({});

/** Path parameters (documentation only: the guards in auth.ts check them). */
export const projectKeyParam = z.string().regex(/^[\w-]{1,256}$/).meta({
  description: 'the project key (letters, digits, "_" or "-"; exactly PROJECT_KEY_LENGTH characters, 20 by default)',
  examples: ['aYYaFHiagqdXKEmVlmvJ'],
});
export const sessionIdParam = z.string().min(1).meta({ description: 'the session id', examples: ['6975518573799938'] });
