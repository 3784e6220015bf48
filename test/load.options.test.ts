/**
 * The bench's command line (load/lib/options.ts): an option the bench would record in its
 * conditions and not apply, or apply other than written, is refused with a usage error rather
 * than silently changing what an A/B pair compares.
 */
import { UsageError, parseHubEnv, parseOptions } from '../load/lib/options';

const URL_MODE = ['--url', 'http://127.0.0.1:9001', '--api-key', 'benchkey123', '--jwt-secret', 'secret'];

function usageError(argv: string[]): string {
  try {
    parseOptions(argv);
  } catch (error) {
    if (error instanceof UsageError) return error.message;
    throw error;
  }
  throw new Error(`no usage error for ${argv.join(' ')}`);
}

describe("the bench's options", () => {
  it('merges repeated --hub-env lists in order, a later value winning per name', () => {
    const options = parseOptions(['--hub-env', 'LISTEN_BACKLOG=511,MAX_UNREAD_CONNECTIONS=0', '--scenario', 'storm', '--hub-env=MAX_UNREAD_CONNECTIONS=64,LOG_LEVEL=info']);
    expect(options.hubEnv).toEqual({ LISTEN_BACKLOG: '511', MAX_UNREAD_CONNECTIONS: '64', LOG_LEVEL: 'info' });
    expect(parseHubEnv(['A=1', 'A=2,B=', 'C=x=y'])).toEqual({ A: '2', B: '', C: 'x=y' });
    expect(parseOptions([]).hubEnv).toEqual({});
    expect(usageError(['--hub-env', 'LISTEN_BACKLOG=511', '--hub-env', 'lower=1'])).toBe('--hub-env: expected NAME=value, got lower=1');
  });

  it('refuses any other option given twice, whichever way it is written', () => {
    expect(usageError(['--sessions', '10000', '--sessions', '19000'])).toBe('--sessions given twice (10000 and 19000): give it once');
    expect(usageError(['--hub-cmd=node a.js', '--hub-cmd', 'node b.js'])).toBe('--hub-cmd given twice (node a.js and node b.js): give it once');
    // A switch twice says the same thing twice.
    expect(parseOptions(['--quick', '--quick']).quick).toBe(true);
  });

  it('refuses a switch given a value, and an option whose value is the next option', () => {
    expect(usageError(['--no-build=false'])).toBe('--no-build takes no value, got --no-build=false');
    expect(usageError(['--out', '--quick'])).toBe('--out needs a value');
    expect(usageError(['--sessions'])).toBe('--sessions needs a value');
    // A negative number is a value, not an option.
    expect(parseOptions(['--hub-autogroup-nice', '-5']).hubAutogroupNice).toBe(-5);
  });

  it('refuses hub settings with --url: a running hub keeps its own', () => {
    expect(parseOptions(URL_MODE).url).toBe('http://127.0.0.1:9001');
    expect(usageError([...URL_MODE, '--hub-env', 'LISTEN_BACKLOG=511'])).toBe('--hub-env applies to the hubs the bench starts, not to --url');
    expect(usageError([...URL_MODE, '--hub-cmd', 'node dist/index.js'])).toBe('--hub-cmd applies to the hubs the bench starts, not to --url');
    expect(usageError([...URL_MODE, '--scenario', 'cluster3'])).toBe('--scenario cluster3 starts its own hubs and redis-server: no --url');
  });

  it('takes nice values as integers in their range instead of clamping them', () => {
    expect(parseOptions(['--generator-nice', '19']).generatorNice).toBe(19);
    expect(parseOptions([]).generatorNice).toBe(0);
    expect(usageError(['--generator-nice', '25'])).toBe('--generator-nice must be an integer from 0 to 19, got 25');
    expect(usageError(['--generator-nice', '2.5'])).toBe('--generator-nice must be an integer from 0 to 19, got 2.5');
    expect(usageError(['--hub-autogroup-nice', '-21'])).toBe('--hub-autogroup-nice must be an integer from -20 to 19, got -21');
  });

  it('starts tracker handshakes 64 per turn unless told otherwise; 0 is the old all-at-once start', () => {
    expect(parseOptions([]).startBatch).toBe(64);
    expect(parseOptions(['--start-batch', '0']).startBatch).toBe(0);
    expect(usageError(['--start-batch', '-1'])).toBe('--start-batch must be a number >= 0, got -1');
  });
});
