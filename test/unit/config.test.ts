import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jwt from 'jsonwebtoken';
import { ApiKeys, loadApiKeys, verifyToken } from '../../src/auth';
import { type ApiKeyGrant, ConfigError, loadConfig, parseApiKeys, parseApiKeysJson } from '../../src/config';

/** The ConfigError a call throws (fails if it throws nothing or something else). */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

const env = (vars: Record<string, string>): NodeJS.ProcessEnv => vars;

describe('loadConfig', () => {
  it('has a default for every setting', () => {
    const config = loadConfig(env({}));
    expect(config).toMatchObject({
      host: '0.0.0.0',
      port: 9001,
      wsPath: '/ws-assist/socket',
      corsOrigin: '*',
      projectKeyLength: 20,
      maxHttpBufferSize: 5 * 1024 * 1024,
      compression: false,
      sessionDataMaxBytes: 16 * 1024,
      sessionDataMaxDepth: 8,
      logLevel: 'info',
      debugGc: false,
    });
    expect(config.jwtSecret).toBeUndefined();
    expect(config.apiKeys).toBeUndefined();
    expect(config.apiKeysFile).toBeUndefined();
    expect(config.nodeId).toBeUndefined();
  });

  it('does not read process.env when given an environment', () => {
    const saved = process.env.PORT;
    process.env.PORT = '1234';
    try {
      expect(loadConfig(env({})).port).toBe(9001);
    } finally {
      if (saved === undefined) delete process.env.PORT;
      else process.env.PORT = saved;
    }
  });

  it('reads the OpenReplay names: ASSIST_JWT_SECRET, LISTEN_PORT, PROJECT_KEY_LENGTH, maxHttpBufferSize, COMPRESSION', () => {
    const config = loadConfig(
      env({ ASSIST_JWT_SECRET: 'a-long-secret', LISTEN_PORT: '8080', PROJECT_KEY_LENGTH: '0', maxHttpBufferSize: '2', COMPRESSION: 'true' }),
    );
    // OpenReplay's maxHttpBufferSize is in megabytes (parseFloat(...) * 1e6).
    expect(config).toMatchObject({ jwtSecret: 'a-long-secret', port: 8080, projectKeyLength: 0, maxHttpBufferSize: 2_000_000, compression: true });
    expect(loadConfig(env({ maxHttpBufferSize: '0.5' })).maxHttpBufferSize).toBe(500_000);
  });

  it('reads the hub names and prefers the first name listed', () => {
    expect(loadConfig(env({ HUB_JWT_SECRET: 'hub-secret-1' })).jwtSecret).toBe('hub-secret-1');
    expect(loadConfig(env({ ASSIST_JWT_SECRET: 'assist-secret', HUB_JWT_SECRET: 'hub-secret-1' })).jwtSecret).toBe('assist-secret');
    expect(loadConfig(env({ PORT: '7000' })).port).toBe(7000);
    expect(loadConfig(env({ LISTEN_PORT: '7001', PORT: '7000' })).port).toBe(7001);
    expect(loadConfig(env({ MAX_HTTP_BUFFER_SIZE: '4096', maxHttpBufferSize: '2' })).maxHttpBufferSize).toBe(4096);
  });

  it('LISTEN_BACKLOG: 65535 by default, a positive integer up to 65535, anything else refused', () => {
    expect(loadConfig(env({})).listenBacklog).toBe(65535);
    expect(loadConfig(env({ LISTEN_BACKLOG: '128' })).listenBacklog).toBe(128);
    for (const bad of ['0', '-1', '70000', '1e3', 'lots']) {
      expect(() => loadConfig(env({ LISTEN_BACKLOG: bad }))).toThrow(/LISTEN_BACKLOG/);
    }
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig(env({ LISTEN_PORT: '', PORT: '7000' })).port).toBe(7000);
    expect(loadConfig(env({ PORT: '' })).port).toBe(9001);
  });

  it('parses booleans', () => {
    for (const v of ['true', '1', 'yes']) expect(loadConfig(env({ COMPRESSION: v })).compression).toBe(true);
    for (const v of ['false', '0', 'no']) expect(loadConfig(env({ COMPRESSION: v })).compression).toBe(false);
    expect(configError(() => loadConfig(env({ COMPRESSION: 'maybe' }))).message).toContain('COMPRESSION: must be one of true, false (or 1, 0, yes, no)');
  });

  it('throws a ConfigError naming the variable for a bad value', () => {
    expect(configError(() => loadConfig(env({ PORT: 'abc' }))).message).toMatch(/\bPORT\b/);
    expect(configError(() => loadConfig(env({ LISTEN_PORT: '70000' }))).message).toMatch(/LISTEN_PORT: must be at most 65535/);
    expect(configError(() => loadConfig(env({ LOG_LEVEL: 'loud' }))).message).toMatch(/LOG_LEVEL: must be one of trace, debug, info/);
    expect(configError(() => loadConfig(env({ LISTEN_PORT: '80.5' }))).message).toMatch(/LISTEN_PORT/);
    expect(configError(() => loadConfig(env({ ASSIST_JWT_SECRET: 'short' }))).message).toMatch(/ASSIST_JWT_SECRET: must be at least 8 characters/);
    expect(configError(() => loadConfig(env({ maxHttpBufferSize: '1000' }))).message).toMatch(/maxHttpBufferSize/);
    expect(configError(() => loadConfig(env({ maxHttpBufferSize: '5MB' }))).message).toMatch(/maxHttpBufferSize/);
    expect(configError(() => loadConfig(env({ PROJECT_KEY_LENGTH: '-1' }))).message).toMatch(/PROJECT_KEY_LENGTH/);
    expect(configError(() => loadConfig(env({ LOG_LEVEL: 'loud' }))).message).toMatch(/LOG_LEVEL/);
    expect(configError(() => loadConfig(env({ WS_PATH: 'no-slash' }))).message).toMatch(/WS_PATH/);
    expect(configError(() => loadConfig(env({ NODE_ID: 'bad id!' }))).message).toMatch(/NODE_ID/);
  });

  it('refuses numbers that are not plain decimal integers (blank, hex, exponent)', () => {
    for (const bad of [' ', '0x1F90', '8e3', '12abc']) {
      expect(configError(() => loadConfig(env({ LISTEN_PORT: bad }))).message).toMatch(/LISTEN_PORT/);
    }
    expect(loadConfig(env({ LISTEN_PORT: ' 8080 ' })).port).toBe(8080);
  });

  it('names every bad variable at once', () => {
    const message = configError(() => loadConfig(env({ PORT: 'x', ASSIST_JWT_SECRET: 'short', LOG_LEVEL: 'loud' }))).message;
    expect(message).toMatch(/PORT/);
    expect(message).toMatch(/ASSIST_JWT_SECRET/);
    expect(message).toMatch(/LOG_LEVEL/);
    expect(message).not.toContain('short');
  });
});

describe('parseApiKeys', () => {
  it('parses key:projects entries separated by ; or newlines', () => {
    const grants = parseApiKeys(' key-aaaa1:projA, projB ;\nkey-bbbb2:*\n\n;key-cccc3:projC');
    expect(grants).toEqual([
      { key: 'key-aaaa1', projects: new Set(['projA', 'projB']) },
      { key: 'key-bbbb2', projects: '*' },
      { key: 'key-cccc3', projects: new Set(['projC']) },
    ]);
  });

  it('takes * among projects as all projects', () => {
    expect(parseApiKeys('key-aaaa1:projA,*')).toEqual([{ key: 'key-aaaa1', projects: '*' }]);
  });

  it('allows colons in the key (the last colon separates)', () => {
    expect(parseApiKeys('ab:cd:efgh:projA')).toEqual([{ key: 'ab:cd:efgh', projects: new Set(['projA']) }]);
  });

  it('an empty spec has no keys', () => {
    expect(parseApiKeys('')).toEqual([]);
    expect(parseApiKeys(' ; \n ')).toEqual([]);
  });

  it('refuses malformed entries without echoing the key', () => {
    const noColon = configError(() => parseApiKeys('secret-key-without-projects'));
    expect(noColon.message).toMatch(/HUB_API_KEYS/);
    expect(noColon.message).not.toContain('secret-key');
    expect(configError(() => parseApiKeys(':projA')).message).toMatch(/HUB_API_KEYS/);
    const short = configError(() => parseApiKeys('short:projA'));
    expect(short.message).toMatch(/at least 8/);
    expect(short.message).not.toContain('short:');
    const noProject = configError(() => parseApiKeys('secret-key-1234: , '));
    expect(noProject.message).toMatch(/no project/);
    expect(noProject.message).not.toContain('secret-key-1234');
  });
});

describe('parseApiKeysJson', () => {
  it('parses {key: [projects]} and {key: "*"}', () => {
    expect(parseApiKeysJson('{"key-aaaa1": ["projA", "projB"], "key-bbbb2": "*"}', 'keys.json')).toEqual([
      { key: 'key-aaaa1', projects: new Set(['projA', 'projB']) },
      { key: 'key-bbbb2', projects: '*' },
    ]);
    expect(parseApiKeysJson('{}', 'keys.json')).toEqual([]);
  });

  it('refuses invalid JSON naming the file', () => {
    expect(configError(() => parseApiKeysJson('{nope', 'keys.json')).message).toBe('HUB_API_KEYS_FILE: keys.json is not valid JSON');
  });

  it('refuses the wrong shapes, naming the file and the reason', () => {
    expect(configError(() => parseApiKeysJson('[]', 'keys.json')).message).toMatch(/^HUB_API_KEYS_FILE: keys\.json: /);
    expect(configError(() => parseApiKeysJson('{"key-aaaa1": []}', 'keys.json')).message).toMatch(/keys\.json/);
    expect(configError(() => parseApiKeysJson('{"key-aaaa1": "all"}', 'keys.json')).message).toMatch(/keys\.json/);
    expect(configError(() => parseApiKeysJson('{"key-aaaa1": [""]}', 'keys.json')).message).toMatch(/keys\.json/);
    expect(configError(() => parseApiKeysJson('{"short": "*"}', 'keys.json')).message).toMatch(/at least 8 characters/);
  });

  it('never echoes a key in its error messages (they end up in logs)', () => {
    for (const text of ['{"secret-key-1234": []}', '{"secret-key-1234": "all"}', '{"secret-key-1234": [""]}', '{"secret": "*"}']) {
      const message = configError(() => parseApiKeysJson(text, 'keys.json')).message;
      expect(message).not.toContain('secret');
    }
  });
});

describe('loadApiKeys', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'hub-keys-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('adds up the keys of HUB_API_KEYS and HUB_API_KEYS_FILE', () => {
    const file = join(dir, 'keys.json');
    writeFileSync(file, '{"file-key-1": ["projB"]}');
    const grants = loadApiKeys(loadConfig(env({ HUB_API_KEYS: 'env-key-01:projA', HUB_API_KEYS_FILE: file })));
    expect(grants).toEqual([
      { key: 'env-key-01', projects: new Set(['projA']) },
      { key: 'file-key-1', projects: new Set(['projB']) },
    ]);
    expect(loadApiKeys(loadConfig(env({})))).toEqual([]);
  });

  it('throws a ConfigError for a missing file', () => {
    const message = configError(() => loadApiKeys(loadConfig(env({ HUB_API_KEYS_FILE: join(dir, 'nope.json') })))).message;
    expect(message).toMatch(/HUB_API_KEYS_FILE: cannot read/);
  });
});

describe('ApiKeys.check', () => {
  const grants: ApiKeyGrant[] = [
    { key: 'key-for-a-and-b', projects: new Set(['projA', 'projB']) },
    { key: 'key-for-all-xx', projects: '*' },
  ];
  const keys = new ApiKeys(grants);

  it('knows how many keys it holds', () => {
    expect(keys.size).toBe(2);
    expect(new ApiKeys([]).size).toBe(0);
  });

  it('ok for a key allowed for the project, with or without "Bearer "', () => {
    expect(keys.check('key-for-a-and-b', 'projA')).toBe('ok');
    expect(keys.check('key-for-a-and-b', 'projB')).toBe('ok');
    expect(keys.check('Bearer key-for-a-and-b', 'projA')).toBe('ok');
    expect(keys.check('key-for-all-xx', 'anything')).toBe('ok');
    expect(keys.check('Bearer key-for-all-xx', 'anything')).toBe('ok');
    // Auth schemes are case-insensitive (RFC 7235).
    expect(keys.check('bearer key-for-a-and-b', 'projA')).toBe('ok');
    expect(keys.check('BEARER key-for-a-and-b', 'projA')).toBe('ok');
  });

  it('forbidden for a known key not allowed for the project', () => {
    expect(keys.check('key-for-a-and-b', 'projC')).toBe('forbidden');
    expect(keys.check('Bearer key-for-a-and-b', 'projC')).toBe('forbidden');
  });

  it('missing for no key', () => {
    expect(keys.check(undefined, 'projA')).toBe('missing');
    expect(keys.check('', 'projA')).toBe('missing');
  });

  it('invalid for an unknown key, a prefix, another case, or Bearer alone', () => {
    expect(keys.check('nope', 'projA')).toBe('invalid');
    expect(keys.check('key-for-a-and', 'projA')).toBe('invalid');
    expect(keys.check('key-for-a-and-b-and-more', 'projA')).toBe('invalid');
    expect(keys.check('KEY-FOR-A-AND-B', 'projA')).toBe('invalid');
    expect(keys.check('Bearer ', 'projA')).toBe('invalid');
    expect(keys.check(' key-for-a-and-b', 'projA')).toBe('invalid');
    expect(new ApiKeys([]).check('key-for-a-and-b', 'projA')).toBe('invalid');
  });

  it('a key listed twice has the projects of both entries', () => {
    const twice = new ApiKeys(parseApiKeys('same-key-123:projA;same-key-123:projB'));
    expect(twice.check('same-key-123', 'projA')).toBe('ok');
    expect(twice.check('same-key-123', 'projB')).toBe('ok');
    expect(twice.check('same-key-123', 'projC')).toBe('forbidden');
  });

  it('match says which key matched: one id per distinct key, whatever its entries or prefix', () => {
    const keys = new ApiKeys(parseApiKeys('key-one-111:projA;key-two-222:projA;key-one-111:projB'));
    const one = keys.match('key-one-111', 'projA');
    const two = keys.match('key-two-222', 'projA');
    expect(one.check).toBe('ok');
    expect(two.check).toBe('ok');
    expect(one.keyId).not.toBe(two.keyId);
    expect(keys.match('Bearer key-one-111', 'projB')).toEqual(one);
    expect(keys.match('key-two-222', 'projB')).toEqual({ check: 'forbidden', keyId: two.keyId });
    expect(keys.match('key-three-333', 'projA')).toEqual({ check: 'invalid', keyId: -1 });
    expect(keys.match(undefined, 'projA')).toEqual({ check: 'missing', keyId: -1 });
  });
});

describe('verifyToken', () => {
  const secret = 'test-secret-0123456789';
  const claims = { projectKey: 'aYYaFHiagqdXKEmVlmvJ', sessionId: '42' };
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

  it('accepts a valid HS256 token, with or without "Bearer "', () => {
    const token = jwt.sign(claims, secret, { algorithm: 'HS256', expiresIn: 60 });
    const result = verifyToken(token, secret);
    expect(result).toMatchObject({ ok: true, claims });
    expect(verifyToken(`Bearer ${token}`, secret)).toMatchObject({ ok: true, claims });
  });

  it('missing for no token', () => {
    expect(verifyToken(undefined, secret)).toEqual({ ok: false, reason: 'missing' });
    expect(verifyToken('', secret)).toEqual({ ok: false, reason: 'missing' });
    expect(verifyToken(42, secret)).toEqual({ ok: false, reason: 'missing' });
    expect(verifyToken({ token: 'x' }, secret)).toEqual({ ok: false, reason: 'missing' });
  });

  it('expired for a token past its exp', () => {
    const token = jwt.sign({ ...claims, exp: Math.floor(Date.now() / 1000) - 60 }, secret, { algorithm: 'HS256' });
    expect(verifyToken(token, secret)).toEqual({ ok: false, reason: 'expired' });
  });

  it('invalid for a token signed with another secret or tampered with', () => {
    expect(verifyToken(jwt.sign(claims, 'another-secret-123', { algorithm: 'HS256' }), secret)).toEqual({ ok: false, reason: 'invalid' });
    const [header, , signature] = jwt.sign(claims, secret, { algorithm: 'HS256' }).split('.');
    const forged = `${header}.${b64({ ...claims, sessionId: '43' })}.${signature}`;
    expect(verifyToken(forged, secret)).toEqual({ ok: false, reason: 'invalid' });
  });

  it('invalid for an unsigned alg "none" token', () => {
    const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
    expect(verifyToken(none, secret)).toEqual({ ok: false, reason: 'invalid' });
    expect(verifyToken(`Bearer ${none}`, secret)).toEqual({ ok: false, reason: 'invalid' });
    // The same with a signature part that is not empty.
    expect(verifyToken(`${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.xyz`, secret)).toEqual({ ok: false, reason: 'invalid' });
  });

  it('invalid for other algorithms: HS512 with the right secret, RS256', () => {
    expect(verifyToken(jwt.sign(claims, secret, { algorithm: 'HS512' }), secret)).toEqual({ ok: false, reason: 'invalid' });
    expect(verifyToken(jwt.sign(claims, secret, { algorithm: 'HS384' }), secret)).toEqual({ ok: false, reason: 'invalid' });
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    expect(verifyToken(jwt.sign(claims, privateKey, { algorithm: 'RS256' }), secret)).toEqual({ ok: false, reason: 'invalid' });
  });

  it('invalid for a token not yet valid, garbage, or a non-object payload', () => {
    const future = jwt.sign({ ...claims, nbf: Math.floor(Date.now() / 1000) + 3600 }, secret, { algorithm: 'HS256' });
    expect(verifyToken(future, secret)).toEqual({ ok: false, reason: 'invalid' });
    expect(verifyToken('not.a.jwt', secret)).toEqual({ ok: false, reason: 'invalid' });
    expect(verifyToken('garbage', secret)).toEqual({ ok: false, reason: 'invalid' });
    expect(verifyToken(jwt.sign('just a string', secret, { algorithm: 'HS256' }), secret)).toEqual({ ok: false, reason: 'invalid' });
  });
});
