// Apollo Client 4 against Inkwell, with the library's default configuration unless a test
// says otherwise: relay-style pagination in the cache, automatic persisted queries over GET,
// optimistic mutations, subscriptions over graphql-ws and over multipart HTTP, and a
// multi-field mutation whose second field fails.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { relayStylePagination } from '@apollo/client/utilities';
import { createClient } from 'graphql-ws';
import { filter, firstValueFrom } from 'rxjs';
import WebSocket from 'ws';

import {
  ENDPOINT,
  MISSING_POST,
  TOKEN,
  WS_URL,
  addComment,
  clip,
  createPost,
  deferred,
  gql as post,
  sha256,
  untilEvent,
  withTimeout,
} from './lib.mjs';

const auth = { authorization: `Bearer ${TOKEN}` };

/** A client over plain HttpLink (signed in when `headers` say so), with a fresh cache. */
function httpClient({ headers = {}, fetch: fetchImpl, cache = new InMemoryCache() } = {}) {
  return new ApolloClient({ link: new HttpLink({ uri: ENDPOINT, headers, fetch: fetchImpl }), cache });
}

/** A fetch that records each request and its response (status, headers) before Apollo reads it. */
function recordingFetch() {
  const requests = [];
  const fetchImpl = async (input, init = {}) => {
    const response = await fetch(input, init);
    const type = response.headers.get('content-type') ?? '';
    requests.push({
      method: init.method ?? 'GET',
      url: new URL(String(input)),
      body: init.body ? JSON.parse(init.body) : null,
      status: response.status,
      headers: response.headers,
      // A copy of a JSON answer (not of a stream: its copy would only end with the stream).
      answer: /^application\/(graphql-response\+)?json/.test(type) ? await response.clone().json() : null,
    });
    return response;
  };
  return { fetch: fetchImpl, requests };
}

/** What the recorded requests were answered, for failure messages. */
const answered = (requests) =>
  requests
    .map(
      (r) =>
        `${r.method} -> HTTP ${r.status} ${r.headers.get('content-type')}: ${clip(JSON.stringify(r.answer))}`,
    )
    .join('; ');

const POSTS_PAGE = gql`
  query PostsPage($first: Int!, $after: String) {
    posts(first: $first, after: $after) {
      edges {
        cursor
        node {
          id
          title
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`;

test('relayStylePagination: fetchMore of two pages equals one fetch of both', async () => {
  const cache = new InMemoryCache({
    typePolicies: { Query: { fields: { posts: relayStylePagination(['filter', 'orderBy']) } } },
  });
  const client = httpClient({ cache });
  const watched = client.watchQuery({ query: POSTS_PAGE, variables: { first: 4 } });
  const first = await withTimeout(
    firstValueFrom(watched.pipe(filter((result) => result.dataState === 'complete'))),
    5000,
    'the first page',
  );
  assert.equal(first.data.posts.edges.length, 4);
  assert.equal(first.data.posts.pageInfo.hasNextPage, true);
  await watched.fetchMore({ variables: { after: first.data.posts.pageInfo.endCursor } });

  // The cache holds one merged list for posts, whatever the page variables.
  const merged = client.readQuery({ query: POSTS_PAGE, variables: { first: 4 } });
  const whole = await httpClient().query({ query: POSTS_PAGE, variables: { first: 8 } });
  const shape = (edges) => edges.map((edge) => [edge.cursor, edge.node.id, edge.node.title]);
  assert.equal(merged.posts.edges.length, 8);
  assert.deepEqual(shape(merged.posts.edges), shape(whole.data.posts.edges));
  assert.equal(merged.posts.pageInfo.endCursor, whole.data.posts.pageInfo.endCursor);
});

test('persisted queries over GET: a miss retried with the document, then a hash-only hit', async () => {
  const { fetch: fetchImpl, requests } = recordingFetch();
  const link = new PersistedQueryLink({ sha256, useGETForHashedQueries: true }).concat(
    new HttpLink({ uri: ENDPOINT, fetch: fetchImpl }),
  );
  // A query text never sent before (a fresh alias), so the server's store cannot know it yet.
  const query = gql(`query ApqProbe { probe${Date.now()}: posts(first: 2) { nodes { id title } } }`);
  const client = new ApolloClient({ link, cache: new InMemoryCache() });

  const first = await client.query({ query, fetchPolicy: 'network-only' });
  assert.equal(Object.values(first.data)[0].nodes.length, 2);
  const second = await client.query({ query, fetchPolicy: 'network-only' });
  assert.deepEqual(second.data, first.data);

  const [miss, retry, hit, ...rest] = requests;
  assert.equal(rest.length, 0, `unexpected extra requests: ${requests.length}`);
  // The miss: a GET with only the hash, answered PERSISTED_QUERY_NOT_FOUND, never cached.
  assert.equal(miss.method, 'GET');
  assert.equal(miss.url.searchParams.get('query'), null);
  const extensions = JSON.parse(miss.url.searchParams.get('extensions'));
  assert.equal(extensions.persistedQuery.version, 1);
  assert.match(extensions.persistedQuery.sha256Hash, /^[0-9a-f]{64}$/);
  assert.equal(miss.answer?.errors?.[0]?.extensions?.code, 'PERSISTED_QUERY_NOT_FOUND');
  const missCache = miss.headers.get('cache-control') ?? '(none)';
  assert.match(missCache, /no-store/, `a miss must not be cached; Cache-Control: ${missCache}`);
  // The retry carries the document (Apollo sends it as a POST).
  assert.ok(
    retry.body?.query?.includes('ApqProbe') || retry.url.searchParams.get('query'),
    'the retry carries the document',
  );
  // The hit: hash only, over GET, cacheable by a CDN since it is anonymous.
  assert.equal(hit.method, 'GET');
  assert.equal(hit.url.searchParams.get('query'), null);
  assert.equal(hit.url.searchParams.get('extensions'), miss.url.searchParams.get('extensions'));
  assert.equal(hit.status, 200);
  const cacheControl = hit.headers.get('cache-control') ?? '(none)';
  assert.match(cacheControl, /^public, max-age=\d+$/, `Cache-Control of an anonymous hit: ${cacheControl}`);
  const vary = (hit.headers.get('vary') ?? '').toLowerCase();
  assert.ok(vary.includes('authorization') && vary.includes('accept'), `Vary of a hit: ${vary || '(none)'}`);
});

test('persisted queries over GET: a signed-in hit is private, no-store', async () => {
  const { fetch: fetchImpl, requests } = recordingFetch();
  const link = new PersistedQueryLink({ sha256, useGETForHashedQueries: true }).concat(
    new HttpLink({ uri: ENDPOINT, fetch: fetchImpl, headers: auth }),
  );
  const client = new ApolloClient({ link, cache: new InMemoryCache() });
  const query = gql(`query ApqViewer { probe${Date.now()}: viewer { id name } }`);
  await client.query({ query, fetchPolicy: 'network-only' });
  const { data } = await client.query({ query, fetchPolicy: 'network-only' });
  assert.ok(Object.values(data)[0]?.id, 'signed in');
  const hit = requests.at(-1);
  assert.equal(hit.method, 'GET');
  assert.equal(hit.url.searchParams.get('query'), null, 'the last request was a hash-only hit');
  const cacheControl = hit.headers.get('cache-control') ?? '(none)';
  assert.equal(cacheControl, 'private, no-store', `Cache-Control of a signed-in hit: ${cacheControl}`);
});

const UPDATE_POST = gql`
  mutation UpdatePost($input: UpdatePostInput!) {
    updatePost(input: $input) {
      __typename
      ... on PostPayload {
        post {
          id
          title
          version
        }
      }
      ... on VersionConflict {
        message
        currentVersion
      }
    }
  }
`;
const POST_FIELDS = gql`
  fragment PostFields on Post {
    id
    title
    version
  }
`;

test('an optimistic response shows at once and is replaced by the server result', async () => {
  const created = await createPost('Before the optimistic edit');
  // Hold the mutation's response until the optimistic state has been checked.
  const release = deferred();
  const gatedFetch = async (input, init) => {
    const response = await fetch(input, init);
    await release.promise;
    return response;
  };
  const client = httpClient({ headers: auth, fetch: gatedFetch });
  // The post in the cache, as a screen would have read it.
  client.writeFragment({ fragment: POST_FIELDS, data: { __typename: 'Post', ...created } });
  const id = client.cache.identify({ __typename: 'Post', id: created.id });

  const mutation = client.mutate({
    mutation: UPDATE_POST,
    variables: { input: { id: created.id, expectedVersion: created.version, title: 'After the edit' } },
    optimisticResponse: {
      updatePost: {
        __typename: 'PostPayload',
        post: {
          __typename: 'Post',
          id: created.id,
          title: 'After the edit (saving)',
          version: created.version + 1,
        },
      },
    },
  });
  await new Promise((resolve) => setTimeout(resolve, 50)); // the request is in flight
  const optimistic = client.readFragment({ id, fragment: POST_FIELDS, optimistic: true });
  assert.equal(
    optimistic.title,
    'After the edit (saving)',
    'the optimistic title shows before the server answers',
  );
  release.resolve();

  const { data } = await withTimeout(mutation, 5000, 'the mutation');
  assert.equal(data.updatePost.__typename, 'PostPayload');
  const settled = client.readFragment({ id, fragment: POST_FIELDS, optimistic: true });
  assert.deepEqual(
    { title: settled.title, version: settled.version },
    { title: 'After the edit', version: created.version + 1 },
    'the server result replaced the optimistic one',
  );
});

const COMMENT_ADDED = gql`
  subscription CommentAdded($postId: ID!) {
    commentAdded(postId: $postId) {
      id
      body
      author {
        id
        name
      }
    }
  }
`;

test('GraphQLWsLink: a subscription event triggered by a mutation', async () => {
  const created = await createPost('Watched over graphql-ws');
  const wsClient = createClient({
    url: WS_URL,
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: `Bearer ${TOKEN}` },
  });
  const client = new ApolloClient({ link: new GraphQLWsLink(wsClient), cache: new InMemoryCache() });
  const received = deferred();
  const subscription = client
    .subscribe({ query: COMMENT_ADDED, variables: { postId: created.id } })
    .subscribe({
      next: (result) => (result.error ? received.reject(result.error) : received.resolve(result.data)),
      error: received.reject,
    });
  try {
    const data = await untilEvent(received.promise, () => addComment(created.id, 'over graphql-ws'), {
      what: 'commentAdded over graphql-ws',
    });
    assert.equal(data.commentAdded.body, 'over graphql-ws');
    assert.equal(data.commentAdded.author.__typename, 'User');
  } finally {
    subscription.unsubscribe();
    await wsClient.dispose();
  }
});

test('HttpLink: a multipart subscription (multipart/mixed;subscriptionSpec=1.0) receives an event', async () => {
  const created = await createPost('Watched over multipart HTTP');
  const { fetch: fetchImpl, requests } = recordingFetch();
  const client = httpClient({ headers: auth, fetch: fetchImpl });
  const received = deferred();
  const failed = (what) => received.reject(new Error(`${what}; the server answered ${answered(requests)}`));
  const subscription = client
    .subscribe({ query: COMMENT_ADDED, variables: { postId: created.id } })
    .subscribe({
      next: (result) => (result.error ? failed(result.error.message) : received.resolve(result.data)),
      error: (error) => failed(error.message),
      complete: () => failed('the multipart subscription completed without an event'),
    });
  try {
    const data = await untilEvent(received.promise, () => addComment(created.id, 'over multipart'), {
      what: 'commentAdded over multipart HTTP',
    });
    assert.equal(data.commentAdded.body, 'over multipart');
    const [request] = requests;
    assert.match(request.headers.get('content-type') ?? '', /^multipart\/mixed/, 'a multipart response');
  } finally {
    subscription.unsubscribe();
  }
});

test('a two-field mutation whose second field fails: RolledBack and the typed error, no errors', async () => {
  const created = await createPost('Kept as it was');
  const client = httpClient({ headers: auth });
  // Apollo's default errorPolicy ('none') rejects on any entry in `errors`; the contract is
  // that expected failures are data, so this resolves.
  const { data, error } = await client.mutate({
    mutation: gql`
      mutation TwoFields($edit: UpdatePostInput!, $gone: PostIdInput!) {
        edit: updatePost(input: $edit) {
          __typename
          ... on PostPayload {
            post {
              id
              title
              version
            }
          }
          ... on RolledBack {
            message
          }
        }
        remove: deletePost(input: $gone) {
          __typename
          ... on DeletePostPayload {
            deletedId
          }
          ... on NotFound {
            message
            nodeId
          }
          ... on RolledBack {
            message
          }
        }
      }
    `,
    variables: {
      edit: { id: created.id, expectedVersion: created.version, title: 'Never saved' },
      gone: { id: MISSING_POST },
    },
  });
  assert.equal(error, undefined);
  assert.equal(data.edit.__typename, 'RolledBack');
  assert.ok(data.edit.message);
  assert.equal(data.remove.__typename, 'NotFound');
  assert.equal(data.remove.nodeId, MISSING_POST);
  // Nothing was applied.
  const now = await post(`query ($id: ID!) { post(id: $id) { title version } }`, { id: created.id });
  assert.deepEqual(now.post, { title: 'Kept as it was', version: created.version });
});
