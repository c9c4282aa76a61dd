// What the browser scripts share: Debian's Chromium through playwright-core, with every
// request to a host other than the loopback refused and recorded, console errors and page
// errors collected, and a line protocol with the Python test (JSON lines: out on stdout,
// in on stdin).
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium'; // Debian's (.ci/run installs it)
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);
// The discard port: nothing listens there, so a proxied request fails at once.
const DEAD_PROXY = 'http://127.0.0.1:9';

/** Whether `url` stays on this machine (data: and blob: URLs never leave the page). */
export function isLocal(url) {
  const { protocol, hostname } = new URL(url);
  return !['http:', 'https:', 'ws:', 'wss:'].includes(protocol) || LOOPBACK.has(hostname);
}

/**
 * Launch Chromium (playwright's launch gives it a fresh temporary profile) and open a page.
 * Nothing leaves the loopback: requests to other hosts go to a proxy that is not there
 * (Chromium sends loopback requests direct), and with `intercept` (the default) page.route
 * aborts them before that. Playwright answers CORS preflights itself while routing is on, so
 * a page testing the server's CORS passes `intercept: false`.
 * Returns {browser, page, problems}; problems collects, as strings: consoleErrors (console
 * messages of type error), pageErrors (uncaught exceptions), offLoopback (the URLs of
 * requests and WebSockets to other hosts).
 */
export async function openPage({ intercept = true } = {}) {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--proxy-server=${DEAD_PROXY}`,
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const problems = { consoleErrors: [], pageErrors: [], offLoopback: [] };
  if (intercept) {
    await context.route('**/*', (route) =>
      isLocal(route.request().url()) ? route.continue() : route.abort('blockedbyclient'),
    );
  }
  const page = await context.newPage();
  page.on('request', (request) => {
    if (!isLocal(request.url())) problems.offLoopback.push(request.url());
  });
  page.on('websocket', (socket) => {
    if (!isLocal(socket.url())) problems.offLoopback.push(socket.url());
  });
  page.on('console', (message) => {
    if (message.type() === 'error') problems.consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => problems.pageErrors.push(String(error)));
  return { browser, page, problems };
}

/** Send one message to the Python test. */
export function report(message) {
  process.stdout.write(JSON.stringify(message) + '\n');
}

let lines = null;

/** The next message from the Python test (one JSON line on stdin). */
export async function receive() {
  lines ??= createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  const { value, done } = await lines.next();
  if (done) throw new Error('the test closed stdin');
  return JSON.parse(value);
}
