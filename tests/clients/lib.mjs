// What every client suite shares: where the live server is, who signs in, and small helpers.
// tests/test_clients.py starts the server and sets these variables; the suites run with
// `node --test <file>` from this directory.
import { createHash } from 'node:crypto';

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this suite through tests/test_clients.py`);
  return value;
}

/** The GraphQL endpoint, e.g. http://127.0.0.1:PORT/graphql. */
export const ENDPOINT = required('INKWELL_URL');
/** The same endpoint for WebSockets. */
export const WS_URL = ENDPOINT.replace(/^http/, 'ws');
/** A token of the seed's member who owns what the suites change (user 2). */
export const TOKEN = required('INKWELL_TOKEN');
/** A token of the seed's admin (user 1). */
export const ADMIN_TOKEN = required('INKWELL_ADMIN_TOKEN');

/** Inkwell's global ID of a row: base64 of "Type:id". */
export const globalId = (type, id) => Buffer.from(`${type}:${id}`).toString('base64');

/** A global ID no row has (a post that was never created). */
export const MISSING_POST = globalId('Post', 987654321);

/** The hex SHA-256 of a string (the persisted-query hash). */
export const sha256 = (text) => createHash('sha256').update(text).digest('hex');

/**
 * POST one operation as JSON with plain fetch (no client library): for setting up data and
 * triggering events. Fails on a non-200 answer or any GraphQL error; returns `data`.
 */
export async function gql(query, variables = {}, token = TOKEN) {
  const response = await fetch(ENDPOINT, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`HTTP ${response.status}: ${text}`);
  const body = JSON.parse(text);
  if (body.errors) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors)}`);
  return body.data;
}

/** A new published post of the owner (user 2); returns {id, version, title}. */
export async function createPost(title = `Client suite post ${Date.now()}`) {
  const data = await gql(
    `mutation ($input: CreatePostInput!) {
       createPost(input: $input) {
         __typename
         ... on PostPayload { post { id version title } }
       }
     }`,
    { input: { title, content: 'Written by the client suite.', tagNames: ['clients'], publish: true } },
  );
  if (data.createPost.__typename !== 'PostPayload') {
    throw new Error(`createPost: ${JSON.stringify(data.createPost)}`);
  }
  return data.createPost.post;
}

/** Add a comment to `postId` as the owner (an event for `commentAdded`). */
export async function addComment(postId, body = `comment ${Date.now()}`) {
  const data = await gql(
    `mutation ($input: AddCommentInput!) {
       addComment(input: $input) { __typename ... on CommentPayload { comment { id body } } }
     }`,
    { input: { postId, body } },
  );
  if (data.addComment.__typename !== 'CommentPayload') {
    throw new Error(`addComment: ${JSON.stringify(data.addComment)}`);
  }
  return data.addComment.comment;
}

/** Reject with `what` timed out unless `promise` settles within `ms`. */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** `text` cut to `max` characters, for failure messages that quote a server's answer. */
export const clip = (text, max = 400) =>
  typeof text === 'string' && text.length > max ? `${text.slice(0, max)}… (${text.length} chars)` : text;

/** A promise with its resolve/reject exposed. */
export function deferred() {
  let resolve, reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Trigger events until the subscription receives one. A client has no signal that the server
 * has started a subscription (graphql-ws acknowledges the connection, not each operation), and
 * an event committed before that is not delivered; so `trigger` is called again every
 * `everyMs` until `received` resolves, or it all times out.
 */
export async function untilEvent(
  received,
  trigger,
  { everyMs = 300, timeoutMs = 8000, what = 'event' } = {},
) {
  let done = false;
  const poke = (async () => {
    while (!done) {
      await trigger();
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  })();
  // A trigger that fails (the mutation was refused) ends the wait with its own error.
  const triggerFailed = poke.then(() => new Promise(() => {}));
  try {
    return await withTimeout(Promise.race([received, triggerFailed]), timeoutMs, what);
  } finally {
    done = true;
    await poke.catch(() => {});
  }
}
