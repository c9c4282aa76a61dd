// graphql-ws (the graphql-transport-ws protocol) with the `ws` package: every shape of
// connection_init credentials Inkwell accepts signs the socket in, and credentials it cannot
// read close it with 4403. Signing in is shown by what only the owner may see: the viewer,
// and the comments on the owner's own draft (their events reach no one else).
import assert from 'node:assert/strict';
import { before, test } from 'node:test';

import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

import { TOKEN, WS_URL, addComment, deferred, gql, untilEvent, withTimeout } from './lib.mjs';

/** A graphql-ws client with `connectionParams`, recording how its socket closed. */
function connect(connectionParams) {
  const closed = deferred();
  const client = createClient({
    url: WS_URL,
    webSocketImpl: WebSocket,
    connectionParams,
    retryAttempts: 0,
    on: { closed: (event) => closed.resolve(event) },
  });
  return { client, closed: closed.promise };
}

/** The first result of one operation over `client` (queries complete after it). */
async function first(client, payload) {
  for await (const result of client.iterate(payload)) return result;
  throw new Error(`no result for ${payload.query}`);
}

let draftId;
before(async () => {
  const data = await gql(
    `mutation { createPost(input: {title: "A draft watched over graphql-ws", publish: false}) {
       ... on PostPayload { post { id } } } }`,
  );
  draftId = data.createPost.post.id;
});

const SHAPES = {
  'Authorization: Bearer': { Authorization: `Bearer ${TOKEN}` },
  'authorization: Bearer': { authorization: `Bearer ${TOKEN}` },
  'headers.Authorization': { headers: { Authorization: `Bearer ${TOKEN}` } },
  authToken: { authToken: TOKEN },
  token: { token: TOKEN },
};

for (const [shape, params] of Object.entries(SHAPES)) {
  test(`connection_init {${shape}} signs in: the viewer, and an event of the owner's draft`, async () => {
    const { client, closed } = connect(params);
    try {
      const viewer = await withTimeout(first(client, { query: '{ viewer { databaseId } }' }), 5000, 'viewer');
      assert.equal(viewer.errors, undefined, JSON.stringify(viewer.errors));
      assert.deepEqual(viewer.data, { viewer: { databaseId: '2' } }, `signed in as user 2 with {${shape}}`);

      const received = deferred();
      const stop = client.subscribe(
        {
          query: 'subscription ($id: ID!) { commentAdded(postId: $id) { body post { id } } }',
          variables: { id: draftId },
        },
        {
          next: (result) =>
            result.errors
              ? received.reject(new Error(JSON.stringify(result.errors)))
              : received.resolve(result.data),
          error: (error) =>
            received.reject(
              error instanceof Error ? error : new Error(`closed: ${error?.code} ${error?.reason}`),
            ),
          complete: () => received.reject(new Error('the subscription completed without an event')),
        },
      );
      const data = await untilEvent(received.promise, () => addComment(draftId, `with ${shape}`), {
        what: `commentAdded with {${shape}}`,
      });
      assert.deepEqual(data.commentAdded, { body: `with ${shape}`, post: { id: draftId } });
      stop();
    } finally {
      await client.dispose();
      const event = await withTimeout(closed, 2000, 'close');
      assert.equal(event.code, 1000, `a normal close, not ${event.code} ${event.reason}`);
    }
  });
}

const UNREADABLE = {
  'Authorization: 42': { Authorization: 42 },
  "authToken: ''": { authToken: '' },
  'authorization: Bearer <invalid>': { authorization: 'Bearer not.a.token' },
};

for (const [shape, params] of Object.entries(UNREADABLE)) {
  test(`connection_init {${shape}} is refused with close code 4403`, async () => {
    const { client, closed } = connect(params);
    const outcome = deferred();
    client.subscribe(
      { query: '{ viewer { id } }' },
      {
        next: (result) => outcome.resolve(`a result: ${JSON.stringify(result)}`),
        error: outcome.resolve,
        complete: () => outcome.resolve('completed'),
      },
    );
    try {
      const event = await withTimeout(closed, 5000, `the close after {${shape}}`);
      assert.equal(
        event.code,
        4403,
        `closed with ${event.code} ${event.reason}; the operation got ${await outcome.promise}`,
      );
    } finally {
      await client.dispose();
    }
  });
}
