/**
 * The package's main entry (`require('live-session-hub')`): the hub as a library. Importing it
 * starts nothing; `startHub(loadConfig())` does. The command-line entry is index.ts (`npm start`),
 * and the browser-safe dashboard client is `live-session-hub/client` (client/index.ts).
 */
export { startHub, type Hub, type HubOptions } from './server';
export { ConfigError, loadConfig, type Config } from './config';
export { ErrorCode } from './errors';
export * from './client/index';
