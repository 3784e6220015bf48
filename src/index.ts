/**
 * Entry point: load the configuration, start the hub, stop it gracefully on SIGTERM/SIGINT.
 * With no API key configured, a development key is generated into HUB_DEV_KEY_FILE (the log says
 * where, never the key itself), so that `npm start` followed by the README's curl works as written.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError, loadConfig, type Config } from './config';
import { exitAfterFlush } from './exit';
import { createLogger } from './ops/logger';
import { startHub } from './server';

function withDevKey(config: Config, log: (msg: string) => void): Config {
  if (config.apiKeys || config.apiKeysFile) return config;
  const path = resolve(config.devKeyFile);
  let key = existsSync(path) ? readFileSync(path, 'utf8').trim() : '';
  if (key.length < 8) {
    key = `dev_${randomBytes(18).toString('base64url')}`;
    writeFileSync(path, `${key}\n`, { mode: 0o600 });
  }
  log(`no API key configured: using the development key in ${path} (allowed for every project)`);
  return { ...config, apiKeys: `${key}:*` };
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  const started = startHub(withDevKey(config, (msg) => logger.warn(msg)), { logger });
  // Installed before the hub starts: installed after, they left a window, right after "hub
  // listening" was written, in which a SIGTERM ended the process by its default action, without a
  // drain. A signal while the hub starts stops it once started (every wait of startHub is bounded).
  const stop = async (signal: string): Promise<void> => {
    logger.info({ signal }, 'signal received');
    // A start that failed exits through main's catch.
    const hub = await started.catch(() => undefined);
    if (!hub) return;
    let code = 0;
    try {
      await hub.shutdown();
    } catch (err) {
      logger.error({ err }, 'shutdown failed');
      code = 1;
    }
    exitAfterFlush(logger, code);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
  await started;
}

main().catch((err: unknown) => {
  process.stderr.write(`hub failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  // A bad setting found while starting (HUB_API_KEYS, HUB_API_KEYS_FILE) exits like one found by loadConfig.
  process.exit(err instanceof ConfigError ? 2 : 1);
});
