// urql against gql_feed with urql's defaults: `cacheExchange` and `fetchExchange`, every
// request carrying urql's own Accept header. Logs in, reads, writes, then receives
// postEvents, printing one JSON line per step (and one per HTTP answer, with its type).
//   FEED_MODE=fetch  subscriptions over fetchExchange (`fetchSubscriptions: true`): the
//                    server answers urql's Accept with Server-Sent Events
//   FEED_MODE=sse    subscriptions over graphql-sse's client, via `subscriptionExchange`
// Environment: GQL_FEED_URL, FEED_EMAIL, FEED_PASSWORD, FEED_STATUS, FEED_EXIT_AFTER.
import { Client, cacheExchange, fetchExchange, gql, subscriptionExchange } from "@urql/core";
import { createClient as createSseClient } from "graphql-sse";

const url = process.env.GQL_FEED_URL ?? "http://127.0.0.1:8000/graphql";
const mode = process.env.FEED_MODE ?? "fetch";
const exitAfter = Number(process.env.FEED_EXIT_AFTER ?? "0");
const print = (line) => process.stdout.write(JSON.stringify(line) + "\n");
const fail = (error) => {
  print({ type: "error", message: String(error?.message ?? error) });
  process.exit(1);
};

let token = null;
const authorization = () => (token ? { authorization: `Bearer ${token}` } : {});

// Only to show which answer each request got; urql's own fetch does the work.
const fetchFn = async (input, init) => {
  const response = await fetch(input, init);
  print({
    type: "response",
    method: init?.method ?? "GET",
    accept: new Headers(init?.headers).get("accept"),
    status: response.status,
    contentType: response.headers.get("content-type"),
  });
  return response;
};

const sse = createSseClient({ url, headers: authorization, fetchFn });
const exchanges = [cacheExchange, fetchExchange];
if (mode === "sse") {
  exchanges.push(
    subscriptionExchange({
      forwardSubscription(request) {
        const input = { ...request, query: request.query || "" };
        return { subscribe: (sink) => ({ unsubscribe: sse.subscribe(input, sink) }) };
      },
    }),
  );
}
const client = new Client({
  url,
  exchanges,
  fetchSubscriptions: mode === "fetch",
  fetch: fetchFn,
  // urql sends queries as GETs, which the server's CSRF rule (Apollo Server's) admits
  // only with this header: a browser sends it cross-site only after a CORS preflight.
  fetchOptions: () => ({ headers: { ...authorization(), "apollo-require-preflight": "true" } }),
});

const LOGIN = gql`
  mutation Login($email: String!, $password: String!) {
    login(email: $email, password: $password) { token user { id name } }
  }
`;
const FIRST_PAGE = gql`
  query FirstPage { me { id name status } posts(page: 1, perPage: 5) { totalPosts posts { id title } } }
`;
const SET_STATUS = gql`
  mutation SetStatus($status: String!) { updateStatus(status: $status) { id status } }
`;
const POST_EVENTS = gql`
  subscription PostEvents { postEvents { id action post { id title creator { id name } } } }
`;

const login = await client.mutation(LOGIN, {
  email: process.env.FEED_EMAIL,
  password: process.env.FEED_PASSWORD,
});
if (login.error) fail(login.error);
token = login.data.login.token;
print({ type: "logged-in", user: login.data.login.user });

const page = await client.query(FIRST_PAGE, {});
if (page.error) fail(page.error);
print({ type: "ready", me: page.data.me, page: page.data.posts });

const wrote = await client.mutation(SET_STATUS, { status: process.env.FEED_STATUS ?? "Reading" });
if (wrote.error) fail(wrote.error);
print({ type: "wrote", user: wrote.data.updateStatus });

let seen = 0;
client.subscription(POST_EVENTS, {}).subscribe((result) => {
  if (result.error) fail(result.error);
  const event = result.data.postEvents;
  print({ type: "event", id: event.id, action: event.action, post: event.post });
  seen += 1;
  if (seen === exitAfter) process.exit(0);
});
print({ type: "subscribed", mode });
