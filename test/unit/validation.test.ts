/** Readable validation messages and the "did you mean" of unknown names. */
import { z } from 'zod';
import { editDistance, nearestName, readableIssues } from '../../src/validation';

const message = (schema: z.ZodType, input: unknown, noun?: string): string => {
  const parsed = schema.safeParse(input, { error: readableIssues(noun) });
  if (parsed.success) throw new Error('expected a refusal');
  return parsed.error.issues.map((i) => i.message).join(' | ');
};

describe('nearestName', () => {
  it('suggests the known name within a third of its length in edits, case-insensitively', () => {
    expect(editDistance('limt', 'limit')).toBe(1);
    expect(nearestName('filter', ['filters', 'sort', 'limit'])).toBe('filters');
    expect(nearestName('limt', ['filters', 'sort', 'limit'])).toBe('limit');
    expect(nearestName('userid', ['userId', 'page'])).toBe('userId');
    expect(nearestName('colour', ['filters', 'sort', 'limit'])).toBeUndefined();
    expect(nearestName('x', ['q'])).toBe('q');
    expect(nearestName('src', ['source'])).toBeUndefined();
  });
});

describe('readableIssues', () => {
  it('says the bound instead of zod’s default', () => {
    expect(message(z.number().max(200), 201)).toBe('must be at most 200');
    expect(message(z.number().min(1), 0)).toBe('must be at least 1');
    expect(message(z.string().max(3), 'abcd')).toBe('must have at most 3 characters');
    expect(message(z.array(z.string()).max(1), ['a', 'b'])).toBe('must have at most 1 items');
    expect(message(z.string().min(1), '')).toBe('must not be empty');
  });

  it('names the expected type, and a missing value as required', () => {
    expect(message(z.number().int(), 1.5)).toBe('must be an integer');
    expect(message(z.string(), 3)).toBe('must be a string');
    expect(message(z.object({ a: z.string() }), {})).toBe('is required (a string)');
  });

  it('lists the allowed values of an enum and of a union of literals and booleans', () => {
    expect(message(z.enum(['info', 'debug']), 'loud')).toBe('must be one of info, debug');
    expect(message(z.union([z.boolean(), z.enum(['true', 'false', '1', '0'])]), 'maybe')).toBe('must be one of true, false, 0, 1');
  });

  it('names unknown keys of a strict object with the noun given, suggesting the close one', () => {
    expect(message(z.strictObject({ limit: z.number().optional() }), { limt: 1, zz: 2 }, 'query parameter')).toBe(
      'unknown query parameter "limt" (did you mean "limit"?); unknown query parameter "zz"',
    );
  });

  it('bounds what it echoes of a hostile body: five names, 64 characters each', () => {
    const keys = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`${'k'.repeat(100)}${i}`, 1]));
    const text = message(z.strictObject({ limit: z.number().optional() }), keys);
    expect(text.match(/unknown field "/g)).toHaveLength(5);
    expect(text).toContain('and 45 more unknown fields');
    expect(text.length).toBeLessThan(600);
  });
});
