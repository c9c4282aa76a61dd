// GraphiQL as a person uses it, driven by tests/test_graphiql_browser.py:
//   node graphiql.mjs '{"base": ..., "email": ..., "password": ..., "draft": ..., "screenshot": ...}'
// Opens <base>/graphql, opens the explorer plugin, types and runs a query, signs in with the
// login mutation and puts the token in the Headers tab, runs { viewer }, then subscribes to
// postUpdated(id: draft) (a draft: only its author and admins hear of it). Messages on stdout:
//   {"step": "query"|"login"|"viewer", "response": <the result pane, parsed>}
//   {"step": "subscribed"}   then waits for {"title": ...} on stdin (the test has changed the
//                             draft's title) and the result pane to show it
//   {"step": "event", "response": ..., "inits": [the connection_init payloads sent]}
//   then, with the Headers tab emptied ({}), subscribes again: a new socket, signed out
//   {"step": "done", "inits": [...], "problems": {...}}
//   or {"step": "failed", "error": ..., "problems": ...}
import { openPage, receive, report } from './browser.mjs';

const config = JSON.parse(process.argv[2]);
const WAIT = 20_000;
const { browser, page, problems } = await openPage();
// The connection_init payloads GraphiQL's sockets send.
const inits = [];
page.on('websocket', (socket) =>
  socket.on('framesent', ({ payload }) => {
    const message = JSON.parse(payload);
    if (message.type === 'connection_init') inits.push(message.payload);
  }),
);

/** Replace an editor's text by typing: focus it, select all, type (insertText, as an IME
 * would, so CodeMirror does not auto-close the brackets). GraphiQL reads the operations of
 * the query editor's text after a debounce: a person pressing run at once would send the
 * previous document's operation name, so wait as a person would. */
async function type(editor, text) {
  await page.locator(`${editor} .CodeMirror`).click();
  await page.keyboard.press('Control+A');
  await page.keyboard.insertText(text);
  await page.waitForTimeout(500);
}

const responseText = () =>
  page.evaluate(() => document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue());

/** Press the run button and wait for the result pane to hold JSON for which `accept` holds. */
async function run(accept = () => true) {
  const before = await responseText();
  await page.getByRole('button', { name: /^Execute query/ }).click();
  const deadline = Date.now() + WAIT;
  for (;;) {
    const text = await responseText();
    if (text !== before && text.trim()) {
      try {
        const body = JSON.parse(text);
        if (accept(body)) return body;
      } catch {
        // still being written
      }
    }
    if (Date.now() > deadline) throw new Error(`no expected response; the pane shows: ${text}`);
    await page.waitForTimeout(100);
  }
}

try {
  await page.goto(`${config.base}/graphql`);
  await page.locator('.graphiql-query-editor .CodeMirror').waitFor({ timeout: WAIT });
  // The explorer plugin: its sidebar button opens it, and it lists the schema's root fields.
  await page.getByRole('button', { name: 'Show GraphiQL Explorer' }).click();
  await page.locator('.graphiql-explorer-root').getByText('posts', { exact: true }).first().waitFor({ timeout: WAIT });

  await type('.graphiql-query-editor', '{ posts(first: 2) { totalCount nodes { title } } }');
  report({ step: 'query', response: await run() });

  const login = `mutation { login(input: {email: "${config.email}", password: "${config.password}"}) {
  __typename ... on AuthPayload { token } } }`;
  await type('.graphiql-query-editor', login);
  const signedIn = await run();
  report({ step: 'login', response: signedIn });

  await page.getByRole('button', { name: 'Headers', exact: true }).click();
  const token = signedIn.data.login.token;
  await type('.graphiql-editor-tool .graphiql-editor:not(.hidden)', `{"Authorization": "Bearer ${token}"}`);
  await type('.graphiql-query-editor', '{ viewer { name role } }');
  report({ step: 'viewer', response: await run() });

  await type('.graphiql-query-editor', `subscription { postUpdated(id: "${config.draft}") { title version } }`);
  await page.getByRole('button', { name: /^Execute query/ }).click();
  await page.getByRole('button', { name: /^Stop query/ }).waitFor({ timeout: WAIT });
  report({ step: 'subscribed' });
  const { title } = await receive();
  await page.locator('.graphiql-response').getByText(title).waitFor({ timeout: WAIT });
  report({ step: 'event', response: JSON.parse(await responseText()), inits });
  await page.screenshot({ path: config.screenshot });
  await page.getByRole('button', { name: /^Stop query/ }).click();
  // Other headers (none): the next subscription opens a socket of its own, signed out.
  await type('.graphiql-editor-tool .graphiql-editor:not(.hidden)', '{}');
  await page.getByRole('button', { name: /^Execute query/ }).click();
  for (let i = 0; inits.length < 2 && i < 100; i += 1) await page.waitForTimeout(100);
  await page.getByRole('button', { name: /^Stop query/ }).click();
  report({ step: 'done', inits, problems });
} catch (error) {
  await page.screenshot({ path: config.screenshot }).catch(() => {});
  report({ step: 'failed', error: String(error.stack || error), problems });
} finally {
  await browser.close();
}
