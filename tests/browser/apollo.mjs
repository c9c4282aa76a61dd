// Drives the Apollo Client page (apollo-page.js, bundled and served on another origin by
// tests/test_graphiql_browser.py):   node apollo.mjs '{"page": <its URL, settings in the fragment>}'
// Messages on stdout:
//   {"step": "subscribed", "result": window.__result, "requests": [...], "problems": {...}}
//       once the page's socket has sent its subscription (or the page failed); then waits
//       for {"action": "mutate"} on stdin (the test has seen the subscription on the server)
//   {"step": "done", "result": ..., "requests": [...], "problems": {...}}
//   {"step": "failed", "error": ..., "problems": ...}
// requests lists each request the page sent to another origin: method, URL, status or failure.
import { openPage, receive, report } from './browser.mjs';

const config = JSON.parse(process.argv[2]);
const WAIT = 20_000;
// No page.route: Playwright would answer the CORS preflights itself, untested.
const { browser, page, problems } = await openPage({ intercept: false });
const pageOrigin = new URL(config.page).origin;
const requests = [];
page.on('requestfinished', async (request) => {
  if (new URL(request.url()).origin === pageOrigin) return;
  const response = await request.response();
  requests.push({ method: request.method(), url: request.url(), status: response && response.status() });
});
page.on('requestfailed', (request) => {
  requests.push({ method: request.method(), url: request.url(), failure: request.failure()?.errorText });
});
let subscribeSent = false;
page.on('websocket', (socket) => {
  socket.on('framesent', ({ payload }) => {
    if (JSON.parse(payload).type === 'subscribe') subscribeSent = true;
  });
  socket.on('close', () => requests.push({ method: 'WebSocket', url: socket.url(), closed: true }));
  socket.on('socketerror', (error) => requests.push({ method: 'WebSocket', url: socket.url(), failure: error }));
});

const state = () => page.evaluate(() => window.__result);

/** Wait until `ready(result)` holds for the page's window.__result, or it failed. */
async function until(ready) {
  const deadline = Date.now() + WAIT;
  for (;;) {
    const result = await state();
    if (result && (result.state === 'failed' || ready(result))) return result;
    if (Date.now() > deadline) return { ...result, errors: [...(result?.errors ?? []), 'timed out'] };
    await page.waitForTimeout(100);
  }
}

try {
  await page.goto(config.page);
  const subscribed = await until((result) => result.state === 'subscribed' && subscribeSent);
  report({ step: 'subscribed', result: subscribed, requests, problems });
  if (subscribed.state === 'subscribed') {
    await receive(); // {"action": "mutate"}
    await page.evaluate(() => window.__mutate());
    const done = await until((result) => result.state === 'done');
    report({ step: 'done', result: done, requests, problems });
  }
} catch (error) {
  report({ step: 'failed', error: String(error.stack || error), problems });
} finally {
  await browser.close();
}
