// The operations of feed.mjs, for relay-compiler (`npm run relay` writes __generated__/).
// Never imported at run time: feed.mjs imports the compiled artifacts.
import { graphql } from "relay-runtime";

graphql`
  mutation operationsLoginMutation($email: String!, $password: String!) {
    login(email: $email, password: $password) { token user { id name } }
  }
`;

graphql`
  query operationsFeedQuery {
    me { id name status }
    posts(page: 1, perPage: 5) { totalPosts posts { id title creator { id name } } }
  }
`;

graphql`
  query operationsNodeQuery($id: ID!) {
    node(id: $id) { __typename id ... on Post { title } ... on User { name } }
  }
`;

graphql`
  mutation operationsSetStatusMutation($status: String!) {
    updateStatus(status: $status) { id status }
  }
`;

graphql`
  subscription operationsPostEventsSubscription($after: ID) {
    postEvents(after: $after) { id action post { id title creator { id name } } }
  }
`;
