/**
 * Fields derived from a tracker's User-Agent. Parsing is the costliest step of a connect, and a
 * fleet shares few distinct User-Agents, so results are cached (LRU, bounded).
 * ua-parser-js 1.x is MIT (2.x is AGPL).
 */
import { LRUCache } from 'lru-cache';
import { UAParser } from 'ua-parser-js';

export interface UserAgentFields {
  userOs: string;
  userBrowser: string;
  userBrowserVersion: string;
  userDevice: string | null;
  userDeviceType: string;
}

const UNKNOWN: UserAgentFields = Object.freeze({ userOs: 'unknown', userBrowser: 'unknown', userBrowserVersion: 'unknown', userDevice: null, userDeviceType: 'desktop' });

export function parseUserAgent(ua: string): UserAgentFields {
  const r = new UAParser(ua).getResult();
  const device = [r.device.vendor, r.device.model].filter(Boolean).join(' ');
  return Object.freeze({
    userOs: r.os.name ?? 'unknown',
    userBrowser: r.browser.name ?? 'unknown',
    userBrowserVersion: r.browser.version ?? 'unknown',
    userDevice: device || null,
    // ua-parser-js leaves desktops without a type.
    userDeviceType: r.device.type ?? 'desktop',
  });
}

export class UserAgentCache {
  private readonly cache: LRUCache<string, UserAgentFields>;

  constructor(max: number) {
    this.cache = new LRUCache({ max });
  }

  fields(ua: string | undefined): UserAgentFields {
    if (!ua) return UNKNOWN;
    // Overlong strings are not worth caching (or parsing in full): real User-Agents are < 512 chars.
    const key = ua.length > 1024 ? ua.slice(0, 1024) : ua;
    let fields = this.cache.get(key);
    if (!fields) {
      fields = parseUserAgent(key);
      this.cache.set(key, fields);
    }
    return fields;
  }
}
