// graphql-sse (GraphQL over Server-Sent Events) in its default "distinct connections" mode:
// each subscription is one POST answered with a text/event-stream. The Authorization header
// signs it in, shown by an event only the owner may see (a comment on their own draft).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { createClient } from 'graphql-sse';

import { ENDPOINT, TOKEN, addComment, clip, deferred, gql, untilEvent } from './lib.mjs';

test("a subscription over SSE with the Authorization header receives the owner's draft event", async () => {
  const created = await gql(
    `mutation { createPost(input: {title: "A draft watched over SSE", publish: false}) {
       ... on PostPayload { post { id } } } }`,
  );
  const draftId = created.createPost.post.id;

  // Record the stream's response: what the server answered, for the failure message.
  const responses = [];
  const client = createClient({
    url: ENDPOINT,
    headers: { Authorization: `Bearer ${TOKEN}` },
    retryAttempts: 0,
    fetchFn: async (input, init) => {
      const response = await fetch(input, init);
      const type = response.headers.get('content-type') ?? '';
      responses.push({
        status: response.status,
        type,
        body: type.includes('event-stream') ? '(a stream)' : clip(await response.clone().text()),
      });
      return response;
    },
  });
  const received = deferred();
  const describe = () => JSON.stringify(responses);
  const stop = client.subscribe(
    {
      query: 'subscription ($id: ID!) { commentAdded(postId: $id) { body post { id } } }',
      variables: { id: draftId },
    },
    {
      next: (result) =>
        result.errors
          ? received.reject(new Error(`errors: ${JSON.stringify(result.errors)}; ${describe()}`))
          : received.resolve(result.data),
      error: (error) =>
        received.reject(new Error(`${error?.message ?? JSON.stringify(error)}; answered ${describe()}`)),
      complete: () =>
        received.reject(new Error(`the stream completed without an event; answered ${describe()}`)),
    },
  );
  try {
    const data = await untilEvent(received.promise, () => addComment(draftId, 'over SSE'), {
      what: 'commentAdded over SSE',
    });
    assert.deepEqual(data.commentAdded, { body: 'over SSE', post: { id: draftId } });
    assert.equal(responses[0].type.split(';')[0], 'text/event-stream');
  } finally {
    stop();
    client.dispose();
  }
});
