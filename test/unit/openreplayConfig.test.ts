/** OpenReplay's environment names (ASSIST_KEY, PREFIX, LISTEN_HOST, LISTEN_PORT, ASSIST_JWT_SECRET, MAXMINDDB_FILE, debug). */
import { ConfigError, loadConfig } from '../../src/config';

describe("OpenReplay's environment names", () => {
  test('are read', () => {
    const config = loadConfig({
      ASSIST_KEY: 'SetARandomStringHere',
      PREFIX: '/assist',
      LISTEN_HOST: '127.0.0.1',
      LISTEN_PORT: '9002',
      ASSIST_JWT_SECRET: 'a-jwt-secret',
      MAXMINDDB_FILE: '/geoip/GeoLite2-City.mmdb',
      debug: '1',
    });
    expect(config).toMatchObject({
      assistKey: 'SetARandomStringHere',
      prefix: '/assist',
      host: '127.0.0.1',
      port: 9002,
      jwtSecret: 'a-jwt-secret',
      maxmindDbFile: '/geoip/GeoLite2-City.mmdb',
      logLevel: 'debug',
    });
  });

  test('defaults: no ASSIST_KEY (internal API off), PREFIX /assist, X-Forwarded-For as the client address header', () => {
    const config = loadConfig({});
    expect(config.assistKey).toBeUndefined();
    expect(config.prefix).toBe('/assist');
    expect(config.clientIpHeader).toBe('x-forwarded-for');
    expect(config.maxmindDbFile).toBeUndefined();
    expect(config.logLevel).toBe('info');
  });

  test('LOG_LEVEL wins over debug=1; lower-case prefix is accepted as the reference does', () => {
    expect(loadConfig({ debug: '1', LOG_LEVEL: 'warn' }).logLevel).toBe('warn');
    expect(loadConfig({ debug: '0' }).logLevel).toBe('info');
    expect(loadConfig({ prefix: '/peers' }).prefix).toBe('/peers');
  });

  test('CLIENT_IP_HEADER=none trusts no header', () => {
    expect(loadConfig({ CLIENT_IP_HEADER: 'none' }).clientIpHeader).toBeUndefined();
    expect(loadConfig({ CLIENT_IP_HEADER: 'X-Real-IP' }).clientIpHeader).toBe('x-real-ip');
  });

  test.each([
    [{ ASSIST_KEY: 'short' }, /ASSIST_KEY: must be 8 to 256/],
    [{ ASSIST_KEY: 'has/a/slash' }, /ASSIST_KEY/],
    [{ PREFIX: 'assist' }, /PREFIX: must be a path/],
    [{ PREFIX: '/assist/' }, /PREFIX/],
    [{ CLIENT_IP_HEADER: 'x forwarded' }, /CLIENT_IP_HEADER/],
    [{ debug: 'maybe' }, /debug/],
  ])('a bad value stops the start naming the variable: %j', (vars, message) => {
    expect(() => loadConfig(vars)).toThrow(ConfigError);
    expect(() => loadConfig(vars)).toThrow(message);
  });
});
