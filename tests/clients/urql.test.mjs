// urql 6 with Graphcache against Inkwell, with urql's DEFAULT options: queries go as GET
// (preferGetMethod: 'within-url-limit') carrying only an Accept header, which lists
// text/event-stream and multipart/mixed too. relayPagination merges pages in the normalized
// cache; a signed-in mutation sends its bearer token through fetchOptions.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Client, fetchExchange, gql } from '@urql/core';
import { cacheExchange } from '@urql/exchange-graphcache';
import { relayPagination } from '@urql/exchange-graphcache/extras';

import { ENDPOINT, TOKEN, clip, createPost } from './lib.mjs';

// Record what urql sends without giving it options of ours: wrap the global fetch it uses.
const requests = [];
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init = {}) => {
  const response = await realFetch(input, init);
  requests.push({
    method: init.method ?? 'GET',
    url: new URL(String(input)),
    headers: new Headers(init.headers),
    status: response.status,
    type: response.headers.get('content-type'),
    answer: await response.clone().text(),
  });
  return response;
};

/** Connection wrappers have no id: Graphcache embeds them in their parent. */
const keys = { PostConnection: () => null, PostEdge: () => null, PageInfo: () => null };

/** A client as the urql docs set one up: Graphcache and fetch, nothing else. */
const makeClient = (cacheOptions = {}, clientOptions = {}) =>
  new Client({
    url: ENDPOINT,
    exchanges: [cacheExchange({ keys, ...cacheOptions }), fetchExchange],
    ...clientOptions,
  });

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

/** What a request answered, for failure messages. */
const describe = (request) =>
  request
    ? `${request.method} -> HTTP ${request.status} (${request.type}): ${JSON.stringify(clip(request.answer))}`
    : 'no request';

/** A result's data; a short failure naming `what` when urql reports an error. */
function dataOf(result, what) {
  if (result.error)
    assert.fail(
      `${what}: urql reports "${result.error.message}"; the server answered ${describe(requests.at(-1))}`,
    );
  return result.data;
}

test('the default client: the first query succeeds (a GET with only an Accept header)', async () => {
  requests.length = 0;
  const result = await makeClient().query(POSTS_PAGE, { first: 3 }).toPromise();
  const [request] = requests;
  assert.equal(request.method, 'GET', 'urql sends queries as GET by default');
  assert.deepEqual([...request.headers.keys()], ['accept'], 'only an Accept header');
  if (result.error)
    assert.fail(`urql's default GET failed ("${result.error.message}"): ${describe(request)}`);
  assert.equal(result.data.posts.edges.length, 3);
});

test('relayPagination: two pages merge into exactly what one fetch of both returns', async () => {
  const client = makeClient({ resolvers: { Query: { posts: relayPagination() } } });
  const first = dataOf(await client.query(POSTS_PAGE, { first: 4 }).toPromise(), 'the first page');
  const after = first.posts.pageInfo.endCursor;
  dataOf(await client.query(POSTS_PAGE, { first: 4, after }).toPromise(), 'the second page');

  // Either page's query now reads the merged list from the cache.
  const merged = client.readQuery(POSTS_PAGE, { first: 4 });
  const whole = dataOf(await makeClient().query(POSTS_PAGE, { first: 8 }).toPromise(), 'both pages at once');
  const shape = (edges) => edges.map((edge) => [edge.cursor, edge.node.id, edge.node.title]);
  assert.equal(merged.data.posts.edges.length, 8);
  assert.deepEqual(shape(merged.data.posts.edges), shape(whole.posts.edges));
  assert.equal(merged.data.posts.pageInfo.endCursor, whole.posts.pageInfo.endCursor);
});

test('a mutation with a bearer token through fetchOptions updates the normalized cache', async () => {
  const created = await createPost('Edited through urql');
  const client = makeClient({}, { fetchOptions: { headers: { authorization: `Bearer ${TOKEN}` } } });
  const POST = gql`
    query Post($id: ID!) {
      post(id: $id) {
        id
        title
        version
      }
    }
  `;
  dataOf(await client.query(POST, { id: created.id }).toPromise(), 'reading the post');

  requests.length = 0;
  const result = await client
    .mutation(
      gql`
        mutation Edit($input: UpdatePostInput!) {
          updatePost(input: $input) {
            __typename
            ... on PostPayload {
              post {
                id
                title
                version
              }
            }
          }
        }
      `,
      { input: { id: created.id, expectedVersion: created.version, title: 'Edited by urql' } },
    )
    .toPromise();
  assert.equal(requests[0].method, 'POST', 'mutations are POSTed');
  assert.equal(dataOf(result, 'the mutation').updatePost.__typename, 'PostPayload');
  // Graphcache keyed Post by id: the query's cached result follows the mutation.
  const cached = client.readQuery(POST, { id: created.id });
  assert.deepEqual(
    { title: cached.data.post.title, version: cached.data.post.version },
    { title: 'Edited by urql', version: created.version + 1 },
  );
});

test('a parse error carries GRAPHQL_PARSE_FAILED (plain fetch: urql never sends a broken document)', async () => {
  const response = await fetch(ENDPOINT, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: '{ posts(first: 1) { ' }),
  });
  const body = await response.json();
  assert.equal(
    body.errors?.[0]?.extensions?.code,
    'GRAPHQL_PARSE_FAILED',
    `a parse error: ${JSON.stringify(body)}`,
  );
});

test('a validation error reaches urql with GRAPHQL_VALIDATION_FAILED', async () => {
  requests.length = 0;
  const result = await makeClient()
    .query('query Invalid { posts(first: 1) { noSuchField } }', {})
    .toPromise();
  const code = result.error?.graphQLErrors?.[0]?.extensions?.code;
  assert.equal(code, 'GRAPHQL_VALIDATION_FAILED', `a validation error: ${describe(requests[0])}`);
});

test('a bad token is HTTP 401 with WWW-Authenticate, an error urql reports', async () => {
  requests.length = 0;
  const client = makeClient({}, { fetchOptions: { headers: { authorization: 'Bearer not.a.token' } } });
  const result = await client.query('query Viewer { viewer { id } }', {}).toPromise();
  assert.ok(result.error, 'a bad token is an error');
  const [request] = requests;
  assert.equal(request.status, 401, `a bad token: ${describe(request)}`);
  assert.equal(result.error.response?.headers.get('www-authenticate'), 'Bearer error="invalid_token"');
});
