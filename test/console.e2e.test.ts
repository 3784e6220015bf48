/**
 * The console (/console) end to end in a real headless Chromium (Debian's chromium, driven by
 * playwright-core), against a real hub and real socket.io-client trackers: sign-in, the live list,
 * UPDATE_SESSION, filters, the session panel and its curl, a tracker leaving, a hub restart, a
 * wrong key, a phone in dark mode. Screenshots of the main states go to test/artifacts/
 * (git-ignored). The tests run in order on one page, as one operator's visit.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import type { Socket } from 'socket.io-client';
import type { Hub } from '../src/server';
import { type TestBrowser, launchChromium } from './support/browser';
import { REPO_ROOT } from './support/buildLock';
import jwt from 'jsonwebtoken';
import { API_KEY, JWT_SECRET, projectKey, startTestHub } from './support/hub';
import { runOk } from './support/run';
import { connectTracker } from './support/live';
import { eventually } from './support/wait';

jest.setTimeout(60_000);

const ARTIFACTS = join(REPO_ROOT, 'test', 'artifacts');
const PROJECT = projectKey('console');
const FIREFOX_MAC = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0';
const IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1';

let hub: Hub;
let port = 0;
let browser: TestBrowser;
let page: Page;
const trackers = new Map<string, Socket>();

const row = (sessionId: string) => page.locator(`tr[data-session="${sessionId}"]`);
/** Rows of the view (not the ones fading out). */
const liveRows = () => page.locator('tbody tr[data-session]:not([data-change="removed"])');
const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, name), fullPage: true });

async function track(sessionId: string, info: Record<string, unknown>, userAgent?: string): Promise<Socket> {
  const socket = (await connectTracker(hub, { minimalInfo: true, projectKey: PROJECT, sessionId, tabId: 'tab1', info, userAgent })).socket;
  trackers.set(sessionId, socket);
  return socket;
}

async function shownIds(): Promise<string[]> {
  return (await liveRows().evaluateAll((rows) => rows.map((r) => r.getAttribute('data-session') ?? ''))).sort();
}

/** Waits until the list shows exactly these sessions. */
async function expectShown(ids: string[], timeoutMs = 3000): Promise<void> {
  let last: string[] = [];
  await eventually(
    async () => (last = await shownIds()).join() === [...ids].sort().join(),
    () => `shown: [${last.join(', ')}], expected [${ids.join(', ')}]`,
    timeoutMs,
    50,
  );
}

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  hub = await startTestHub();
  port = Number(new URL(hub.url).port);
  browser = await launchChromium();
  page = await browser.context.newPage();
  page.on('pageerror', (err) => {
    throw err;
  });
});

afterAll(async () => {
  for (const t of trackers.values()) t.close();
  await browser?.close();
  await hub?.shutdown();
});

test('the page is served by the hub, with the two labelled sign-in fields', async () => {
  await page.goto(`${hub.url}/console?project=${PROJECT}`);
  await page.getByLabel('API key', { exact: true }).waitFor();
  expect(await page.getByLabel('Project', { exact: true }).inputValue()).toBe(PROJECT);
});

test('a wrong key shows a clear error and stays on the sign-in form', async () => {
  await page.getByLabel('API key', { exact: true }).fill('not-a-valid-key-000');
  await page.getByRole('button', { name: 'Sign in' }).click();
  const alert = page.getByRole('alert');
  await alert.waitFor();
  expect(await alert.textContent()).toMatch(/refused this API key/);
  expect(await page.getByLabel('API key', { exact: true }).isVisible()).toBe(true);
  await shot('01-sign-in-wrong-key.png');
});

test('signs in; trackers that connect appear within a second', async () => {
  await page.getByLabel('API key', { exact: true }).fill(API_KEY);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('[data-status="live"]').waitFor();
  // The query is in the address, the key is not.
  expect(page.url()).toContain(`project=${PROJECT}`);
  expect(page.url()).not.toContain(API_KEY);

  await track('1001', { userID: 'alice@example.com', pageTitle: 'Pricing', metadata: { plan: 'trial' } });
  await row('1001').waitFor({ timeout: 1000 });
  await track('1002', { userID: 'bob@example.com', pageTitle: 'Checkout', metadata: { plan: 'pro', team: 'acme' } }, FIREFOX_MAC);
  await row('1002').waitFor({ timeout: 1000 });
  await track('1003', { userID: 'carol@example.com', pageTitle: 'Docs' }, IPHONE);
  await row('1003').waitFor({ timeout: 1000 });
  await eventually(async () => (await page.locator('.total').getAttribute('data-total')) === '3', () => 'total is not 3', 3000);
  expect(await row('1002').textContent()).toContain('Firefox');
  await shot('02-live-list.png');
});

test('an UPDATE_SESSION changes its row, marked as updated', async () => {
  trackers.get('1003')?.emit('UPDATE_SESSION', { meta: { tabId: 'tab1' }, data: { userID: 'carol@newmail.example', metadata: { plan: 'enterprise' } } });
  await page.locator('tr[data-session="1003"][data-change="updated"]').waitFor({ timeout: 3000 });
  const text = await row('1003').textContent();
  expect(text).toContain('carol@newmail.example');
  expect(text).toContain('plan=enterprise');
});

test('a filter narrows the list, kept in the URL; a session that stops matching leaves it', async () => {
  await page.getByRole('button', { name: 'Add filter' }).click();
  await page.getByLabel('Filter type').selectOption('USERID');
  await page.getByLabel('Operator').selectOption('contains');
  await page.getByLabel('Values').fill('alice, bob');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expectShown(['1001', '1002'], 3000);
  expect(decodeURIComponent(page.url())).toContain('"type":"USERID"');
  await shot('03-filtered.png');

  trackers.get('1001')?.emit('UPDATE_SESSION', { meta: { tabId: 'tab1' }, data: { userID: 'zed@example.com' } });
  await expectShown(['1002'], 3000);
  await row('1001').waitFor({ state: 'detached', timeout: 4000 });

  // The shared URL opens the same view (the key comes from this tab's session storage).
  await page.reload();
  await page.locator('[data-status="live"]').waitFor();
  await expectShown(['1002'], 3000);

  await page.getByRole('button', { name: 'Remove filter' }).click();
  await page.getByRole('button', { name: 'Apply' }).click();
  await expectShown(['1001', '1002', '1003'], 3000);
});

test('the session panel shows every field and the tabs, with a curl that works; keyboard only', async () => {
  await row('1002').focus();
  await page.keyboard.press('Enter');
  const panel = page.getByRole('dialog');
  await panel.waitFor();
  const text = (await panel.textContent()) ?? '';
  for (const field of ['sessionID', 'userID', 'bob@example.com', 'metadata', 'userBrowser', 'Firefox', 'tabIds', 'timestamp', 'projectKey']) expect(text).toContain(field);
  expect(await panel.locator('.tabs li').allTextContents()).toEqual(['tab1']);
  await shot('04-session-panel.png');

  const curl = await panel.getByLabel("curl: this list's query").inputValue();
  expect(curl).not.toContain(API_KEY);
  const { stdout } = await runOk('bash', ['-c', curl], { cwd: REPO_ROOT, env: { ...process.env, HUB_API_KEY: API_KEY }, timeoutMs: 10_000 });
  const answer = JSON.parse(stdout) as { data: { total: number; sessions: { sessionID: string }[] } };
  expect(answer.data.total).toBe(3);
  const one = await panel.getByLabel('curl: this session').inputValue();
  const single = await runOk('bash', ['-c', one], { cwd: REPO_ROOT, env: { ...process.env, HUB_API_KEY: API_KEY }, timeoutMs: 10_000 });
  expect((JSON.parse(single.stdout) as { data: { userID: string } }).data.userID).toBe('bob@example.com');

  await page.keyboard.press('Escape');
  await panel.waitFor({ state: 'detached' });
  expect(await page.evaluate("document.activeElement?.getAttribute('data-session')")).toBe('1002');
});

test('a tracker that disconnects: its row goes', async () => {
  trackers.get('1003')?.close();
  trackers.delete('1003');
  await page.locator('tr[data-session="1003"][data-change="removed"]').waitFor({ timeout: 3000 });
  await row('1003').waitFor({ state: 'detached', timeout: 4000 });
  expect(await shownIds()).toEqual(['1001', '1002']);
});

test('the hub restarts: the page reconnects and shows the new hub\'s list', async () => {
  for (const t of trackers.values()) t.close();
  trackers.clear();
  await hub.shutdown();
  await page.locator('[data-status="reconnecting"]').waitFor({ timeout: 5000 });
  await shot('05-reconnecting.png');

  hub = await startTestHub({ LISTEN_PORT: String(port) });
  await track('1002', { userID: 'bob@example.com', pageTitle: 'Checkout again' });
  await track('2001', { userID: 'dave@example.com', pageTitle: 'Home', metadata: { plan: 'free' } });
  await page.locator('[data-status="resynced"], [data-status="live"]').waitFor({ timeout: 10_000 });
  await expectShown(['1002', '2001'], 5000);
  expect(await page.locator('.total').getAttribute('data-total')).toBe('2');
  expect(await row('1002').textContent()).toContain('Checkout again');
  await shot('06-after-restart.png');
});

test('phone-sized and dark: no sideways scrolling, every row readable', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.waitForTimeout(100);
  const fits = await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth');
  expect(fits).toBe(true);
  const background = await page.evaluate('getComputedStyle(document.body).backgroundColor');
  expect(background).toBe('rgb(17, 19, 24)');
  await shot('07-phone-dark.png');
  await row('2001').click();
  await page.getByRole('dialog').waitFor();
  await page.screenshot({ path: join(ARTIFACTS, '08-phone-dark-panel.png') });
  await page.keyboard.press('Escape');
});

test('a JWT with a projectKey claim signs in for that project, and is refused for another', async () => {
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.emulateMedia({ colorScheme: 'light' });
  await page.getByRole('button', { name: 'Sign out' }).click();
  const other = projectKey('elsewhere');
  await page.getByLabel('API key', { exact: true }).fill(jwt.sign({ projectKey: other }, JWT_SECRET, { algorithm: 'HS256', expiresIn: 600 }));
  await page.getByLabel('Project', { exact: true }).fill(PROJECT);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').waitFor();
  expect(await page.getByRole('alert').textContent()).toContain(`may not read project ${PROJECT}`);

  await page.getByLabel('API key', { exact: true }).fill(jwt.sign({ projectKey: PROJECT }, JWT_SECRET, { algorithm: 'HS256', expiresIn: 600 }));
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('[data-status="live"]').waitFor();
  await expectShown(['1002', '2001']);
});
