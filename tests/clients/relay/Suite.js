// The operations of the Relay suite, in graphql tags as an app writes them. relay-compiler
// (run by tests/test_clients.py, see ../relay.config.json) validates them against the
// exported schema (schema.graphql) and writes __generated__/<Name>.graphql.js; without Babel
// these tags are never evaluated, so relay.test.mjs imports the generated artifacts instead.
// Relay requires each name to start with the module's name: Suite.
const { graphql } = require('relay-runtime');

// A paginated list of posts: @connection keeps one merged list in the store, and
// @refetchable generates the query that fetches the next page (SuitePostsPaginationQuery).
graphql`
  fragment Suite_posts on Query
  @argumentDefinitions(count: { type: "Int", defaultValue: 3 }, cursor: { type: "String" })
  @refetchable(queryName: "SuitePostsPaginationQuery") {
    posts(first: $count, after: $cursor) @connection(key: "Suite_posts") {
      edges {
        node {
          id
          title
        }
      }
    }
  }
`;

graphql`
  query SuitePostsQuery($count: Int, $cursor: String) {
    ...Suite_posts @arguments(count: $count, cursor: $cursor)
  }
`;

// A detail view: any object by its global ID.
graphql`
  query SuiteNodeQuery($id: ID!) {
    node(id: $id) {
      __typename
      id
      ... on Post {
        title
        version
      }
    }
  }
`;

// The typed errors name the object as nodeId, never id: Relay's store is keyed by id alone,
// so an error object with the post's id would overwrite the Post record.
graphql`
  mutation SuiteUpdatePostMutation($input: UpdatePostInput!) {
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
        nodeId
        currentVersion
      }
      ... on NotFound {
        message
        nodeId
      }
    }
  }
`;

// A new post goes to the top of the list already in the store, without a refetch.
graphql`
  mutation SuiteCreatePostMutation($input: CreatePostInput!, $connections: [ID!]!) {
    createPost(input: $input) {
      __typename
      ... on PostPayload {
        post @prependNode(connections: $connections, edgeTypeName: "PostEdge") {
          id
          title
        }
      }
    }
  }
`;

// A deleted post leaves the list in the store.
graphql`
  mutation SuiteDeletePostMutation($input: PostIdInput!, $connections: [ID!]!) {
    deletePost(input: $input) {
      __typename
      ... on DeletePostPayload {
        deletedId @deleteEdge(connections: $connections)
      }
      ... on NotFound {
        message
        nodeId
      }
    }
  }
`;
