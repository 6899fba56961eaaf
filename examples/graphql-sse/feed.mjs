// graphql-sse's client against gql_feed: logs in (a plain JSON POST: only subscriptions
// stream here), then receives postEvents, resuming after a dropped connection with no
// event lost or repeated. One JSON line per step on stdout.
//   FEED_MODE=distinct  one stream per subscription (graphql-sse's default)
//   FEED_MODE=single    one stream for every operation (`singleConnection: true`)
// Environment: GQL_FEED_URL, FEED_EMAIL, FEED_PASSWORD, FEED_EXIT_AFTER.
//
// The resume: graphql-sse's client drops the SSE `id:` lines and sends no Last-Event-ID,
// but it re-sends the very `variables` object it was given each time it reconnects (in
// both modes). So keep that object and set `after` to the id of each event received: a
// reconnect then asks the server for everything after the last event seen.
import { createClient } from "graphql-sse";

const url = process.env.GQL_FEED_URL ?? "http://127.0.0.1:8000/graphql";
const mode = process.env.FEED_MODE ?? "distinct";
const exitAfter = Number(process.env.FEED_EXIT_AFTER ?? "0");
const print = (line) => process.stdout.write(JSON.stringify(line) + "\n");
const fail = (error) => {
  print({ type: "error", message: String(error?.message ?? JSON.stringify(error)) });
  process.exit(1);
};

async function login(email, password) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/graphql-response+json" },
    body: JSON.stringify({
      query: "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token user { id name } } }",
      variables: { e: email, p: password },
    }),
  });
  const { data, errors } = await response.json();
  if (errors) fail(errors);
  return data.login;
}

const { token, user } = await login(process.env.FEED_EMAIL, process.env.FEED_PASSWORD);
print({ type: "logged-in", user });

const client = createClient({
  url,
  singleConnection: mode === "single",
  headers: () => ({ authorization: `Bearer ${token}` }),
  retryAttempts: 10, // a server restart takes a few seconds
  on: { connected: (reconnected) => print({ type: "connected", reconnected }) },
});

const query = "subscription($after: ID) { postEvents(after: $after) { id action post { id title } } }";
const variables = {}; // re-sent as is on every reconnect: `after` moves with each event
let seen = 0;
client.subscribe({ query, variables }, {
  next: ({ data, errors }) => {
    if (errors) fail(errors);
    const event = data.postEvents;
    variables.after = event.id;
    print({ type: "event", id: event.id, action: event.action, post: event.post });
    seen += 1;
    if (seen === exitAfter) process.exit(0);
  },
  error: fail,
  complete: () => fail("completed"),
});
