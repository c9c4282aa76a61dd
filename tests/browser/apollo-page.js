// A web app on another origin than Inkwell, as teams write one with Apollo Client 4: queries and
// mutations over HttpLink with a bearer token and a W3C traceparent header (so every request
// is CORS-preflighted), subscriptions over GraphQLWsLink (graphql-ws) with the token in
// connectionParams. esbuild bundles it at test time (tests/test_graphiql_browser.py); the
// page's URL fragment holds its settings as JSON: {api, token, traceparent, draft}.
// Progress and results go to window.__result (driven by apollo.mjs):
//   {state: "loading" | "subscribed" | "done" | "failed", viewer, mutation, event, errors[]}
// window.__mutate() (called once the test has seen the subscription on the server) changes
// the draft's title, which the subscription should then report.
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { isSubscriptionOperation } from '@apollo/client/utilities';
import { createClient } from 'graphql-ws';

const config = JSON.parse(decodeURIComponent(location.hash.slice(1)));
const result = (window.__result = { state: 'loading', errors: [] });
const fail = (where) => (error) => {
  result.errors.push(`${where}: ${error && error.message ? error.message : String(error)}`);
  result.state = 'failed';
};

const http = new HttpLink({
  uri: `${config.api}/graphql`,
  headers: {
    authorization: `Bearer ${config.token}`,
    traceparent: config.traceparent,
    'apollo-require-preflight': 'true',
  },
});
const ws = new GraphQLWsLink(
  createClient({
    url: `${config.api.replace(/^http/, 'ws')}/graphql`,
    connectionParams: { Authorization: `Bearer ${config.token}` },
    retryAttempts: 0,
    on: { error: fail('websocket') },
  }),
);
const client = new ApolloClient({
  link: ApolloLink.split(({ query }) => isSubscriptionOperation(query), ws, http),
  cache: new InMemoryCache(),
});

const VIEWER = gql`query Viewer { viewer { id name role } }`;
const POST_UPDATED = gql`subscription PostUpdated($id: ID!) { postUpdated(id: $id) { id title version } }`;
const UPDATE_POST = gql`mutation UpdatePost($id: ID!, $title: String!) {
  updatePost(input: {id: $id, expectedVersion: 1, title: $title}) {
    __typename ... on PostPayload { post { id title version } } ... on MutationError { message } } }`;

async function main() {
  result.viewer = (await client.query({ query: VIEWER })).data.viewer;
  client.subscribe({ query: POST_UPDATED, variables: { id: config.draft } }).subscribe({
    next: ({ data, error }) => {
      if (error) return fail('subscription')(error);
      result.event = data.postUpdated;
      if (result.mutation) result.state = 'done';
    },
    error: fail('subscription'),
  });
  window.__mutate = async () => {
    try {
      const { data } = await client.mutate({
        mutation: UPDATE_POST,
        variables: { id: config.draft, title: 'Heard by Apollo' },
      });
      result.mutation = data.updatePost;
      if (result.event) result.state = 'done';
    } catch (error) {
      fail('mutation')(error);
    }
  };
  result.state = 'subscribed';
}

main().catch(fail('query'));
