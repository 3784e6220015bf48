/**
 * User-Agent fields with the names OpenReplay's assist server reports (ua-parser-js 2.x), from the
 * MIT 1.x parser and the mapping in src/live/userAgent.ts, on real User-Agents of the common
 * browsers and phones.
 */
import { UserAgentCache, parseUserAgent } from '../../src/live/userAgent';

type Row = [desc: string, ua: string, os: string | null, browser: string | null, version: string | null, device: string | null, type: string];

const FIXTURES: Row[] = [
  ['Chrome on macOS', 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36', 'macOS', 'Chrome', '124.0.0.0', 'Macintosh', 'desktop'],
  ['Safari on macOS', 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15', 'macOS', 'Safari', '17.4.1', 'Macintosh', 'desktop'],
  ['Firefox on macOS', 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:125.0) Gecko/20100101 Firefox/125.0', 'macOS', 'Firefox', '125.0', 'Macintosh', 'desktop'],
  ['Chrome on Windows', 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.91 Safari/537.36', 'Windows', 'Chrome', '124.0.6367.91', null, 'desktop'],
  ['Edge on Windows', 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80', 'Windows', 'Edge', '124.0.2478.80', null, 'desktop'],
  ['Firefox on Windows', 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0', 'Windows', 'Firefox', '125.0', null, 'desktop'],
  ['Opera on Windows', 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 OPR/109.0.0.0', 'Windows', 'Opera', '109.0.0.0', null, 'desktop'],
  ['Chrome on Linux', 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36', 'Linux', 'Chrome', '124.0.0.0', null, 'desktop'],
  ['Chrome on a Chromebook', 'Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36', 'Chrome OS', 'Chrome', '124.0.0.0', null, 'desktop'],
  ['Safari on iPhone', 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1', 'iOS', 'Mobile Safari', '17.4.1', 'iPhone', 'mobile'],
  ['Chrome on iPhone', 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1', 'iOS', 'Mobile Chrome', '124.0.6367.88', 'iPhone', 'mobile'],
  ['Firefox on iPhone', 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/125.0 Mobile/15E148 Safari/605.1.15', 'iOS', 'Mobile Firefox', '125.0', 'iPhone', 'mobile'],
  ['Safari on iPad', 'Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1', 'iOS', 'Mobile Safari', '17.4', 'iPad', 'tablet'],
  ['Chrome on a Galaxy S23', 'Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36', 'Android', 'Mobile Chrome', '124.0.6367.82', 'SM-S918B', 'mobile'],
  ['Chrome on a Pixel 8', 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36', 'Android', 'Mobile Chrome', '124.0.6367.82', 'Pixel 8', 'mobile'],
  ['Chrome on Android, reduced User-Agent', 'Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36', 'Android', 'Mobile Chrome', '124.0.0.0', 'K', 'mobile'],
  ['Chrome on a Galaxy Tab (no "Mobile")', 'Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36', 'Android', 'Chrome', '124.0.0.0', 'SM-X700', 'tablet'],
  ['Firefox on Android', 'Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0', 'Android', 'Mobile Firefox', '125.0', null, 'mobile'],
  ['Samsung Internet', 'Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36', 'Android', 'Samsung Internet', '24.0', 'SM-S918B', 'mobile'],
  ['an Android WebView', 'Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP1A.240405.002; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36', 'Android', 'Chrome WebView', '124.0.6367.82', 'Pixel 8', 'mobile'],
];

describe('User-Agent fields, as OpenReplay names them', () => {
  test.each(FIXTURES)('%s', (_desc, ua, os, browser, version, device, type) => {
    expect(parseUserAgent(ua)).toEqual({ userOs: os, userBrowser: browser, userBrowserVersion: version, userDevice: device, userDeviceType: type });
  });

  test('no User-Agent gives nulls (and the desktop type), not "unknown"', () => {
    const cache = new UserAgentCache(10);
    expect(cache.fields(undefined)).toEqual({ userOs: null, userBrowser: null, userBrowserVersion: null, userDevice: null, userDeviceType: 'desktop' });
    expect(cache.fields('')).toEqual(cache.fields(undefined));
  });

  test('a User-Agent the parser cannot read gives nulls too', () => {
    expect(parseUserAgent('curl/8.5.0')).toMatchObject({ userOs: null, userDevice: null, userDeviceType: 'desktop' });
    expect(parseUserAgent('x')).toEqual({ userOs: null, userBrowser: null, userBrowserVersion: null, userDevice: null, userDeviceType: 'desktop' });
  });
});
