// Relay against Inkwell without React: relay-compiler turns relay/Suite.js into artifacts
// (validated against schema.graphql), and relay-runtime's Environment (Network over fetch,
// Store over a RecordSource) runs them. Shown: a @connection paged with the @refetchable
// query relay-compiler generates, a node(id:) detail query, typed mutation errors that leave
// the store's Post record alone, and @prependNode / @deleteEdge keeping the list current.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { before, test } from 'node:test';

import relay from 'relay-runtime';

import { ENDPOINT, TOKEN, createPost, gql } from './lib.mjs';

const {
  ConnectionHandler,
  Environment,
  Network,
  RecordSource,
  Store,
  commitMutation,
  createOperationDescriptor,
  getSelector,
} = relay;

const HERE = fileURLToPath(new URL('.', import.meta.url));
const artifacts = {};

before(async () => {
  // Compile at test time, so the operations are checked against today's schema.graphql.
  const compiler = spawnSync(`${HERE}node_modules/.bin/relay-compiler`, [], { cwd: HERE, encoding: 'utf8' });
  if (compiler.status !== 0) {
    throw new Error(`relay-compiler failed (${compiler.status}):\n${compiler.stdout}${compiler.stderr}`);
  }
  for (const name of [
    'Suite_posts',
    'SuitePostsQuery',
    'SuitePostsPaginationQuery',
    'SuiteNodeQuery',
    'SuiteUpdatePostMutation',
    'SuiteCreatePostMutation',
    'SuiteDeletePostMutation',
  ]) {
    artifacts[name] = (await import(`./relay/__generated__/${name}.graphql.js`)).default;
  }
});

/** An environment as a Relay app makes one: a fetch Network signed in as the owner, a Store. */
function makeEnvironment() {
  const network = Network.create(async (params, variables) => {
    const response = await fetch(ENDPOINT, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ query: params.text, variables }),
    });
    return response.json();
  });
  return new Environment({ network, store: new Store(new RecordSource()) });
}

/** Run a query and return its data as the store now has it. Retained: no component holds it. */
async function query(environment, artifact, variables) {
  const operation = createOperationDescriptor(artifact, variables);
  environment.retain(operation);
  await new Promise((resolve, reject) => {
    environment.execute({ operation }).subscribe({ complete: resolve, error: reject });
  });
  return environment.lookup(operation.fragment).data;
}

/** commitMutation as a promise of the response (rejects on errors, which the contract rules out). */
function mutate(environment, artifact, variables) {
  return new Promise((resolve, reject) => {
    commitMutation(environment, {
      mutation: artifact,
      variables,
      onCompleted: (response, errors) =>
        errors?.length ? reject(new Error(JSON.stringify(errors))) : resolve(response),
      onError: reject,
    });
  });
}

/** The Suite_posts fragment as a component would read it from the store. */
function readPosts(environment, rootData) {
  return environment.lookup(getSelector(artifacts.Suite_posts, rootData)).data.posts;
}

/** The connection record @prependNode / @deleteEdge update: the root's Suite_posts list. */
const postsConnection = () => ConnectionHandler.getConnectionID('client:root', 'Suite_posts');

/** A Post record in the store, its fields as stored. */
function storedPost(environment, id) {
  const record = environment.getStore().getSource().get(id);
  return record && { __typename: record.__typename, title: record.title, version: record.version };
}

test('@connection paged with the generated @refetchable query merges to one fetch of both pages', async () => {
  const environment = makeEnvironment();
  const root = await query(environment, artifacts.SuitePostsQuery, { count: 3 });
  const firstPage = readPosts(environment, root);
  assert.equal(firstPage.edges.length, 3);
  assert.equal(firstPage.pageInfo.hasNextPage, true);
  await query(environment, artifacts.SuitePostsPaginationQuery, {
    count: 3,
    cursor: firstPage.pageInfo.endCursor,
  });

  const merged = readPosts(environment, root);
  const whole = await gql('{ posts(first: 6) { edges { cursor node { id title } } } }');
  const shape = (edges) => edges.map((edge) => [edge.cursor, edge.node.id, edge.node.title]);
  assert.deepEqual(shape(merged.edges), shape(whole.posts.edges));
});

test('node(id:) reads a post by its global ID', async () => {
  const created = await createPost('Read through node(id:)');
  const data = await query(makeEnvironment(), artifacts.SuiteNodeQuery, { id: created.id });
  assert.deepEqual(
    { ...data.node },
    { __typename: 'Post', id: created.id, title: created.title, version: created.version },
  );
});

test('VersionConflict for a stale expectedVersion leaves the stored Post intact', async () => {
  const created = await createPost('Conflicted in Relay');
  const environment = makeEnvironment();
  await query(environment, artifacts.SuiteNodeQuery, { id: created.id });
  // Someone else edits the post: the version the store holds is now stale.
  await gql('mutation ($input: UpdatePostInput!) { updatePost(input: $input) { __typename } }', {
    input: { id: created.id, expectedVersion: created.version, title: 'Edited elsewhere' },
  });

  const response = await mutate(environment, artifacts.SuiteUpdatePostMutation, {
    input: { id: created.id, expectedVersion: created.version, title: 'Stale edit' },
  });
  assert.equal(response.updatePost.__typename, 'VersionConflict');
  assert.equal(response.updatePost.nodeId, created.id);
  assert.equal(response.updatePost.currentVersion, created.version + 1);
  assert.deepEqual(storedPost(environment, created.id), {
    __typename: 'Post',
    title: 'Conflicted in Relay',
    version: created.version,
  });
  const detail = environment.lookup(
    createOperationDescriptor(artifacts.SuiteNodeQuery, { id: created.id }).fragment,
  );
  assert.equal(detail.data.node.__typename, 'Post');
  assert.equal(detail.data.node.title, 'Conflicted in Relay');
});

test('NotFound for a deleted post leaves the stored Post intact', async () => {
  const created = await createPost('Deleted behind Relay');
  const environment = makeEnvironment();
  await query(environment, artifacts.SuiteNodeQuery, { id: created.id });
  await gql('mutation ($id: ID!) { deletePost(input: {id: $id}) { __typename } }', { id: created.id });

  const response = await mutate(environment, artifacts.SuiteUpdatePostMutation, {
    input: { id: created.id, expectedVersion: created.version, title: 'Too late' },
  });
  assert.equal(response.updatePost.__typename, 'NotFound');
  assert.equal(response.updatePost.nodeId, created.id);
  assert.deepEqual(storedPost(environment, created.id), {
    __typename: 'Post',
    title: 'Deleted behind Relay',
    version: created.version,
  });
});

test('@prependNode adds a created post to the stored list, @deleteEdge removes a deleted one', async () => {
  const environment = makeEnvironment();
  const root = await query(environment, artifacts.SuitePostsQuery, { count: 3 });
  const before = readPosts(environment, root).edges.map((edge) => edge.node.id);
  const connections = [postsConnection()];

  const created = await mutate(environment, artifacts.SuiteCreatePostMutation, {
    input: { title: 'Prepended by Relay', publish: true },
    connections,
  });
  assert.equal(created.createPost.__typename, 'PostPayload');
  const newId = created.createPost.post.id;
  const afterCreate = readPosts(environment, root).edges.map((edge) => edge.node.id);
  assert.deepEqual(afterCreate, [newId, ...before]);
  assert.equal(readPosts(environment, root).edges[0].node.title, 'Prepended by Relay');

  const deleted = await mutate(environment, artifacts.SuiteDeletePostMutation, {
    input: { id: newId },
    connections,
  });
  assert.equal(deleted.deletePost.__typename, 'DeletePostPayload');
  assert.deepEqual(
    readPosts(environment, root).edges.map((edge) => edge.node.id),
    before,
  );
});
