// Subscribes to postEvents with a real client and prints one JSON line per event.
//   node subscribe.mjs sse        graphql-sse's client (distinct connections mode)
//   node subscribe.mjs sse-single graphql-sse's client (single connection mode): after
//                                 FEED_EXIT_AFTER events it unsubscribes (DELETE) and
//                                 prints that request's status before exiting
//   node subscribe.mjs multipart  Apollo Client 4's HttpLink (multipart subscriptions)
//   node subscribe.mjs multipart-resume  the same, resubscribing with `after:` (the last
//                                 event's id) whenever the stream ends or fails
// Environment: GQL_FEED_URL, FEED_TOKEN, FEED_EXIT_AFTER (events before exiting), and for
// sse-single GQL_FEED_OPERATIONS_URL: where operations (POST, DELETE) go, as a load
// balancer might send them to another server than the reservation (PUT) and the stream.
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { createClient } from "graphql-sse";

const url = process.env.GQL_FEED_URL ?? "http://127.0.0.1:8000/graphql";
const token = process.env.FEED_TOKEN;
const exitAfter = Number(process.env.FEED_EXIT_AFTER ?? "1");
const query = "subscription { postEvents { id action post { id title creator { name } } } }";

const print = (line) => process.stdout.write(JSON.stringify(line) + "\n");
let seen = 0;
let done = () => process.exit(0);
function onEvent(event) {
  print({ type: "event", id: event.id, action: event.action, post: event.post });
  seen += 1;
  if (seen === exitAfter) done();
}
function fail(error) {
  print({ type: "error", message: String(error?.message ?? error) });
  process.exit(1);
}

if (process.argv[2] === "sse") {
  const client = createClient({
    url,
    headers: () => ({ authorization: `Bearer ${token}` }),
    retryAttempts: 0,
  });
  client.subscribe({ query }, {
    next: (result) => (result.errors ? fail(JSON.stringify(result.errors)) : onEvent(result.data.postEvents)),
    error: fail,
    complete: () => fail("completed"),
  });
} else if (process.argv[2] === "sse-single") {
  const operationsUrl = process.env.GQL_FEED_OPERATIONS_URL ?? url;
  const fetchFn = async (target, init) => {
    const method = init?.method ?? "GET";
    const routed = method === "POST" || method === "DELETE" ? target.replace(url, operationsUrl) : target;
    const response = await fetch(routed, init);
    print({ type: "request", method, url: routed.split("?")[0], status: response.status });
    if (method === "DELETE") process.exit(response.status === 200 ? 0 : 1);
    return response;
  };
  const client = createClient({
    url,
    singleConnection: true,
    fetchFn,
    headers: () => ({ authorization: `Bearer ${token}` }),
    retryAttempts: 0,
  });
  const unsubscribe = client.subscribe({ query }, {
    next: (result) => (result.errors ? fail(JSON.stringify(result.errors)) : onEvent(result.data.postEvents)),
    error: fail,
    complete: () => {},
  });
  done = unsubscribe; // sends the DELETE; its answer ends the process
} else if (process.argv[2] === "multipart") {
  const client = new ApolloClient({
    cache: new InMemoryCache(),
    link: new HttpLink({ uri: url, headers: { authorization: `Bearer ${token}` } }),
  });
  client.subscribe({ query: gql(query) }).subscribe({
    next: ({ data, error }) => (error ? fail(error) : onEvent(data.postEvents)),
    error: fail,
    complete: () => fail("completed"),
  });
} else if (process.argv[2] === "multipart-resume") {
  const client = new ApolloClient({
    cache: new InMemoryCache(),
    link: new HttpLink({ uri: url, headers: { authorization: `Bearer ${token}` } }),
  });
  const resumable = gql(
    "subscription($after: ID) { postEvents(after: $after) { id action post { id title creator { name } } } }",
  );
  let after = null;
  let attempts = 0;
  const follow = () => {
    const again = (why) => {
      print({ type: "ended", why: String(why?.message ?? why) });
      if ((attempts += 1) > 60) fail("gave up");
      setTimeout(follow, 500);
    };
    const subscription = client.subscribe({ query: resumable, variables: { after } }).subscribe({
      next: ({ data, error }) => {
        if (error) {
          subscription.unsubscribe();
          again(error);
          return;
        }
        after = data.postEvents.id;
        onEvent(data.postEvents);
      },
      error: again,
      complete: () => again("complete"),
    });
  };
  follow();
} else {
  fail(`unknown transport ${process.argv[2]}`);
}
