// Relay (relay-runtime, with its default getDataID: records keyed by `id` alone) against
// gql_feed. Logs in, reads, writes and fetches a node over HTTP; receives postEvents over
// graphql-ws into the store, resuming after a dropped connection. One JSON line per step.
// Environment: GQL_FEED_URL, FEED_EMAIL, FEED_PASSWORD, FEED_STATUS, FEED_EXIT_AFTER.
// The operations are in src/operations.js; `npm run relay` compiles them to __generated__/.
import relay from "relay-runtime";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import LoginMutation from "./__generated__/operationsLoginMutation.graphql.js";
import FeedQuery from "./__generated__/operationsFeedQuery.graphql.js";
import NodeQuery from "./__generated__/operationsNodeQuery.graphql.js";
import SetStatusMutation from "./__generated__/operationsSetStatusMutation.graphql.js";
import PostEventsSubscription from "./__generated__/operationsPostEventsSubscription.graphql.js";

const { Environment, Network, Observable, RecordSource, Store } = relay;
const { commitMutation, fetchQuery, requestSubscription } = relay;

const url = process.env.GQL_FEED_URL ?? "http://127.0.0.1:8000/graphql";
const exitAfter = Number(process.env.FEED_EXIT_AFTER ?? "0");
const print = (line) => process.stdout.write(JSON.stringify(line) + "\n");
const fail = (error) => {
  print({ type: "error", message: String(error?.message ?? JSON.stringify(error)) });
  process.exit(1);
};

let token = null;

// Queries and mutations: one JSON POST each, asking for the spec's own media type.
function fetchFn(params, variables) {
  const request = fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/graphql-response+json, application/json;q=0.9",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query: params.text, operationName: params.name, variables }),
  }).then((response) => response.json());
  return Observable.from(request);
}

// Subscriptions: graphql-ws. It sends the same payload again when it reconnects, so
// keeping `after` on that payload at the last event received resumes with nothing lost.
const ws = createClient({
  url: url.replace(/^http/, "ws"),
  webSocketImpl: WebSocket,
  connectionParams: () => ({ Authorization: `Bearer ${token}` }),
  retryAttempts: 10,
  shouldRetry: () => true,
  on: { connected: () => print({ type: "connected" }) },
});
function subscribe(params, variables) {
  const payload = { operationName: params.name, query: params.text, variables: { ...variables } };
  return Observable.create((sink) =>
    ws.subscribe(payload, {
      next: (result) => {
        const id = result.data?.postEvents?.id;
        if (id) payload.variables.after = id;
        sink.next(result);
      },
      error: (error) => sink.error(error),
      complete: () => sink.complete(),
    }),
  );
}

const environment = new Environment({
  network: Network.create(fetchFn, subscribe),
  store: new Store(new RecordSource()),
});
const record = (id) => {
  const found = environment.getStore().getSource().get(id);
  return found ? { typename: found.__typename, title: found.title ?? null, name: found.name ?? null } : null;
};
const mutate = (mutation, variables) =>
  new Promise((resolve, reject) =>
    commitMutation(environment, { mutation, variables, onCompleted: resolve, onError: reject }),
  );

const login = await mutate(LoginMutation, {
  email: process.env.FEED_EMAIL,
  password: process.env.FEED_PASSWORD,
}).catch(fail);
token = login.login.token;
print({ type: "logged-in", user: login.login.user });

const feed = await fetchQuery(environment, FeedQuery, {}).toPromise().catch(fail);
print({ type: "ready", me: feed.me, page: feed.posts });

const wrote = await mutate(SetStatusMutation, { status: process.env.FEED_STATUS ?? "Reading" }).catch(fail);
print({ type: "wrote", user: wrote.updateStatus, record: record(wrote.updateStatus.id) });

const node = await fetchQuery(environment, NodeQuery, { id: feed.me.id }).toPromise().catch(fail);
print({ type: "node", node: node.node });

let seen = 0;
requestSubscription(environment, {
  subscription: PostEventsSubscription,
  variables: {},
  onNext: (response) => {
    const event = response.postEvents;
    print({
      type: "event",
      id: event.id,
      action: event.action,
      post: event.post,
      eventRecord: record(event.id),
      postRecord: record(event.post.id),
    });
    seen += 1;
    if (seen === exitAfter) process.exit(0);
  },
  onError: fail,
});
print({ type: "subscribed" });
