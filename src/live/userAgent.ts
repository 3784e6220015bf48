/**
 * Fields derived from a tracker's User-Agent, with the names OpenReplay's assist server reports.
 *
 * That server parses with ua-parser-js 2.x, which is AGPL; the hub parses with 1.x (MIT) and maps
 * the few names 2.x changed (its changelog, "Migrating from v1 to v2"), each checked on real
 * User-Agents in test/unit/userAgent.test.ts:
 *
 * | field       | 1.x says        | 2.x (and the hub) says | when |
 * |-------------|-----------------|------------------------|------|
 * | userOs      | `Mac OS`        | `macOS`                | always |
 * | userOs      | `Chromium OS`   | `Chrome OS`            | always |
 * | userBrowser | `Chrome`        | `Mobile Chrome`        | Chrome for iOS (`CriOS/`, `CrMo/`), or `Chrome/<version> Mobile` (Android phones) |
 * | userBrowser | `Firefox`       | `Mobile Firefox`       | Firefox for iOS (`FxiOS/`), or `Mobile;`/`Tablet;` before `Firefox/` (Android) |
 * | userBrowser | `Android Browser` (version of `Version/`) | `Chrome WebView` (version of `Chrome/`) | Android WebViews (`; wv)` then `Chrome/`) |
 *
 * Everything else is the parser's, as the reference takes it: `userDevice` is the device model
 * alone (`iPhone`, `SM-S918B`, `Macintosh`), null when the parser finds none; `userDeviceType`
 * is `desktop` when the parser gives no type; without a User-Agent (or a field the parser cannot
 * tell) the names are null.
 *
 * Parsing is the costliest step of a connect, and a fleet shares few distinct User-Agents, so
 * results are cached (LRU, bounded).
 */
import { LRUCache } from 'lru-cache';
import { UAParser } from 'ua-parser-js';

export interface UserAgentFields {
  userOs: string | null;
  userBrowser: string | null;
  userBrowserVersion: string | null;
  userDevice: string | null;
  userDeviceType: string;
}

const NONE: UserAgentFields = Object.freeze({ userOs: null, userBrowser: null, userBrowserVersion: null, userDevice: null, userDeviceType: 'desktop' });

const OS_NAMES: Readonly<Record<string, string>> = { 'Mac OS': 'macOS', 'Chromium OS': 'Chrome OS' };
const MOBILE_CHROME = /\b(?:crmo|crios)\/[\w.]+|chrome\/[\w.]+ mobile/i;
const MOBILE_FIREFOX = /\bfxios\/[\w.-]+|(?:mobile|tablet);.*firefox\/[\w.-]+/i;
const WEBVIEW = /; wv\).+chrome\/([\w.]+)/i;

/** The name and version ua-parser-js 2.x gives a browser that 1.x calls `name` `version`, for this User-Agent. */
export function browserOf(name: string | undefined, version: string | undefined, ua: string): { name: string | null; version: string | null } {
  if (!name) return { name: null, version: version || null };
  if (name === 'Chrome' && MOBILE_CHROME.test(ua)) return { name: 'Mobile Chrome', version: version || null };
  if (name === 'Firefox' && MOBILE_FIREFOX.test(ua)) return { name: 'Mobile Firefox', version: version || null };
  if (name === 'Android Browser') {
    const webview = WEBVIEW.exec(ua);
    if (webview) return { name: 'Chrome WebView', version: webview[1] ?? null };
  }
  return { name, version: version || null };
}

/** The name ua-parser-js 2.x gives an OS that 1.x calls `name`. */
export function osName(name: string | undefined): string | null {
  if (!name) return null;
  return OS_NAMES[name] ?? name;
}

export function parseUserAgent(ua: string): UserAgentFields {
  const r = new UAParser(ua).getResult();
  const browser = browserOf(r.browser.name, r.browser.version, ua);
  return Object.freeze({
    userOs: osName(r.os.name),
    userBrowser: browser.name,
    userBrowserVersion: browser.version,
    userDevice: r.device.model || null,
    // ua-parser-js leaves desktops without a type.
    userDeviceType: r.device.type || 'desktop',
  });
}

export class UserAgentCache {
  private readonly cache: LRUCache<string, UserAgentFields>;

  constructor(max: number) {
    this.cache = new LRUCache({ max });
  }

  fields(ua: string | undefined): UserAgentFields {
    if (!ua) return NONE;
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
