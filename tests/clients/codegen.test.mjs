// GraphQL Code Generator over the exported schema (schema.graphql): the typescript and
// typescript-operations plugins type a few operations as a frontend would write them, and
// TypeScript accepts code that narrows the generated mutation-result union. Needs no server.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const SCHEMA = join(HERE, '..', '..', 'schema.graphql');
const work = mkdtempSync(join(tmpdir(), 'inkwell-codegen-'));
after(() => rmSync(work, { recursive: true, force: true }));

const OPERATIONS = `
query CodegenPosts($first: Int!, $after: String) {
  posts(first: $first, after: $after) {
    totalCount
    edges { cursor node { id title publishedAt databaseId author { name } tags { name } } }
    pageInfo { hasNextPage endCursor }
  }
}

mutation CodegenUpdatePost($input: UpdatePostInput!) {
  updatePost(input: $input) {
    __typename
    ... on PostPayload { post { id title version } }
    ... on VersionConflict { nodeId currentVersion }
    ... on NotFound { nodeId }
    ... on MutationError { message }
  }
}

subscription CodegenCommentAdded($postId: ID!) {
  commentAdded(postId: $postId) { id body author { name } }
}
`;

// What a component does with the generated types: narrow the result union by __typename.
const USAGE = `
import type { CodegenPostsQuery, CodegenPostsQueryVariables, CodegenUpdatePostMutation } from './types';
import type { Post, PostStatus } from './schema-types';

export const draft: PostStatus = 'DRAFT' as PostStatus;
export const versionOf = (post: Pick<Post, 'version'>): number => post.version;

export const variables: CodegenPostsQueryVariables = { first: 10, after: null };

export function titles(data: CodegenPostsQuery): string[] {
  return data.posts.edges.map((edge) => edge.node.title);
}

export function outcome(data: CodegenUpdatePostMutation): string {
  const result = data.updatePost;
  if (!result) return 'no result';
  switch (result.__typename) {
    case 'PostPayload':
      return 'saved as version ' + result.post.version;
    case 'VersionConflict':
      return result.nodeId + ' is now version ' + result.currentVersion + ': ' + result.message;
    case 'NotFound':
      return result.nodeId + ': ' + result.message;
    default:
      return result.message; // RolledBack, ValidationError, Forbidden, Unauthenticated
  }
}
`;

/** Run a CLI from node_modules/.bin in this directory; fail with its output unless it exits 0. */
function run(bin, args) {
  const result = spawnSync(join(HERE, 'node_modules', '.bin', bin), args, { cwd: HERE, encoding: 'utf8' });
  assert.equal(
    result.status,
    0,
    `${bin} ${args.join(' ')} exited ${result.status}:\n${result.stdout}${result.stderr}`,
  );
  return result;
}

test('graphql-codegen generates types for operations against schema.graphql', () => {
  writeFileSync(join(work, 'operations.graphql'), OPERATIONS);
  const config = {
    schema: SCHEMA,
    documents: join(work, 'operations.graphql'),
    // Every custom scalar must be mapped: a new one in the schema fails here.
    config: { strictScalars: true, scalars: { DateTime: 'string', BigInt: 'string' } },
    generates: {
      // The schema's types. typescript-operations (v6) writes the input types and enums its
      // operations use itself, so the two go to files of their own (in one they would clash).
      [join(work, 'schema-types.ts')]: { plugins: ['typescript'] },
      [join(work, 'types.ts')]: { plugins: ['typescript-operations'] },
    },
  };
  writeFileSync(join(work, 'codegen.json'), JSON.stringify(config));
  run('graphql-codegen', ['--config', join(work, 'codegen.json'), '--silent']);
  assert.ok(existsSync(join(work, 'schema-types.ts')), 'schema-types.ts was written');
  assert.ok(existsSync(join(work, 'types.ts')), 'types.ts was written');
});

test(
  'tsc accepts code that uses the generated types',
  { skip: !existsSync(join(HERE, 'node_modules', '.bin', 'tsc')) && 'typescript is not installed' },
  () => {
    assert.ok(existsSync(join(work, 'types.ts')), 'the previous test generated types.ts');
    writeFileSync(join(work, 'usage.ts'), USAGE);
    run('tsc', [
      '--noEmit',
      '--strict',
      '--target',
      'es2022',
      '--module',
      'esnext',
      '--moduleResolution',
      'bundler',
      '--skipLibCheck',
      join(work, 'usage.ts'),
      join(work, 'schema-types.ts'),
    ]);
  },
);
