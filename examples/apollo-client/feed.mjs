// Apollo Client against gql_feed: log in, read the first page of posts, and keep it live.
//
// Queries and mutations go over HTTP (hashed queries as GET, Apollo's automatic persisted
// queries); `postEvents` comes over a WebSocket through GraphQLWsLink. Every event is
// merged into the normalized InMemoryCache, so whatever reads the cache (useQuery in a
// React app, the watcher below here) re-renders by itself:
//
//   CREATED  prepended to the first page (cache.updateQuery);
//   UPDATED  nothing to write: the event's Post is normalized into `Post:<id>`, which the
//            page already points at, so the page shows the edit at once;
//   DELETED  removed from every cached page (cache.modify), then the Post itself is
//            evicted (cache.evict) and what only it used is collected (cache.gc).
//
// Run: node feed.mjs   (settings: GQL_FEED_URL, FEED_EMAIL, FEED_PASSWORD, FEED_PER_PAGE,
// FEED_EXIT_AFTER). It prints one JSON line per step, with the cache state, so a test can
// follow it.

import { createHash } from "node:crypto";

import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { SetContextLink } from "@apollo/client/link/context";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { OperationTypeNode } from "graphql";
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const HTTP_URL = process.env.GQL_FEED_URL ?? "http://127.0.0.1:8000/graphql";
const WS_URL = HTTP_URL.replace(/^http/, "ws");
const EMAIL = process.env.FEED_EMAIL ?? "ann@example.com";
const PASSWORD = process.env.FEED_PASSWORD ?? "correct horse";
const PER_PAGE = Number(process.env.FEED_PER_PAGE ?? 10);
const EXIT_AFTER = Number(process.env.FEED_EXIT_AFTER ?? 0); // 0: run until interrupted

// One fragment for every place a post appears, so an event carries exactly the fields
// the page shows and normalization can merge it field for field.
const POST_FIELDS = gql`
  fragment PostFields on Post {
    id
    title
    content
    imageUrl
    updatedAt
    creator {
      id
      name
    }
  }
`;

const LOGIN = gql`
  mutation Login($email: String!, $password: String!) {
    login(email: $email, password: $password) {
      token
      user {
        id
        name
      }
    }
  }
`;

const FIRST_PAGE = gql`
  query FirstPage($perPage: Int!) {
    posts(page: 1, perPage: $perPage) {
      totalPosts
      posts {
        ...PostFields
      }
    }
  }
  ${POST_FIELDS}
`;

const POST_EVENTS = gql`
  subscription PostEvents {
    postEvents {
      id
      action
      post {
        ...PostFields
      }
    }
  }
  ${POST_FIELDS}
`;

// The type policies a frontend copies.
const typePolicies = {
  Query: {
    fields: {
      // Each page is its own cache entry, keyed by its arguments.
      posts: { keyArgs: ["page", "perPage"] },
    },
  },
  // A page has no id: it lives inside its `posts(...)` field. `merge: true` lets a refetch
  // update it in place instead of replacing it (and lets cache.modify edit it).
  PostPage: { merge: true },
  // Post and User need no policy: every gql_feed object has an `id`, so the cache
  // normalizes them by default, and `Post:42` is one object whichever query, mutation or
  // event brought it. (Spelling out `keyFields: ["id"]` would change the key to
  // `Post:{"id":"42"}`.)
  // Events are transient: keep them out of the normalized store, or a long-running page
  // would keep one `PostEvent:<id>` entry per event it ever saw.
  PostEvent: { keyFields: false },
};

/** Apply one postEvents event to the cache (see the top of this file for why each way). */
function applyPostEvent(cache, event, perPage = PER_PAGE) {
  const { post } = event;
  switch (event.action) {
    case "CREATED":
      cache.updateQuery({ query: FIRST_PAGE, variables: { perPage } }, (data) => {
        if (!data || data.posts.posts.some((p) => p.id === post.id)) {
          return undefined; // page not loaded, or the post is already on it: no change
        }
        return {
          posts: {
            ...data.posts,
            totalPosts: data.posts.totalPosts + 1,
            posts: [post, ...data.posts.posts].slice(0, perPage),
          },
        };
      });
      break;
    case "DELETED": {
      const id = cache.identify(post);
      cache.modify({
        id: "ROOT_QUERY",
        fields: {
          // Every cached page, whatever its arguments.
          posts(page, { readField }) {
            const kept = page.posts.filter((ref) => readField("id", ref) !== post.id);
            if (kept.length === page.posts.length) {
              return { ...page, totalPosts: Math.max(0, page.totalPosts - 1) };
            }
            return { ...page, posts: kept, totalPosts: Math.max(0, page.totalPosts - 1) };
          },
        },
      });
      cache.evict({ id });
      cache.gc();
      break;
    }
    default:
      // UPDATED: already merged into `Post:<id>` when the event was written to the cache.
      break;
  }
}

function print(line) {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function cachedPosts(cache) {
  return Object.fromEntries(
    Object.entries(cache.extract()).filter(([key]) => key.startsWith("Post:")),
  );
}

async function main() {
  let token = null;

  const auth = new SetContextLink(({ headers }) => ({
    headers: token ? { ...headers, authorization: `Bearer ${token}` } : headers,
  }));
  const http = ApolloLink.from([
    auth,
    // Sends the hash first (as GET: cacheable by CDNs); on PersistedQueryNotFound it
    // resends with the query text, which registers it with the server.
    new PersistedQueryLink({
      sha256: (text) => createHash("sha256").update(text).digest("hex"),
      useGETForHashedQueries: true,
    }),
    new HttpLink({ uri: HTTP_URL }),
  ]);
  let connected;
  const ready = new Promise((resolve) => {
    connected = resolve;
  });
  const wsClient = createClient({
    url: WS_URL,
    webSocketImpl: WebSocket,
    // Read at every (re)connection, so it carries the current token.
    connectionParams: () => ({ Authorization: `Bearer ${token}` }),
    on: { connected: () => connected() },
  });
  const link = ApolloLink.split(
    ({ operationType }) => operationType === OperationTypeNode.SUBSCRIPTION,
    new GraphQLWsLink(wsClient),
    http,
  );
  const client = new ApolloClient({ link, cache: new InMemoryCache({ typePolicies }) });

  const login = await client.mutate({
    mutation: LOGIN,
    variables: { email: EMAIL, password: PASSWORD },
  });
  token = login.data.login.token;
  print({ type: "logged-in", user: login.data.login.user });

  // What a page component does: watch the query; it re-renders on every cache change.
  const page = client.watchQuery({ query: FIRST_PAGE, variables: { perPage: PER_PAGE } });
  const watching = page.subscribe(({ data, dataState }) => {
    if (dataState === "complete") print({ type: "render", page: data.posts });
  });

  let seen = 0;
  let finish;
  const done = new Promise((resolve) => {
    finish = resolve;
  });
  const events = client.subscribe({ query: POST_EVENTS }).subscribe({
    next({ data, error }) {
      if (error) {
        print({ type: "error", message: error.message });
        return;
      }
      const event = data.postEvents;
      applyPostEvent(client.cache, event);
      const current = client.readQuery({ query: FIRST_PAGE, variables: { perPage: PER_PAGE } });
      print({
        type: "event",
        action: event.action,
        postId: event.post.id,
        page: current?.posts ?? null,
        posts: cachedPosts(client.cache),
      });
      seen += 1;
      if (EXIT_AFTER && seen >= EXIT_AFTER) finish();
    },
    error(error) {
      print({ type: "error", message: String(error?.message ?? error) });
      finish(1);
    },
  });

  const first = await client.query({ query: FIRST_PAGE, variables: { perPage: PER_PAGE } });
  await ready;
  print({ type: "ready", page: first.data.posts, posts: cachedPosts(client.cache) });

  process.once("SIGINT", () => finish());
  process.once("SIGTERM", () => finish());
  const status = (await done) ?? 0;
  events.unsubscribe();
  watching.unsubscribe();
  client.stop();
  await wsClient.dispose();
  process.exit(status);
}

main().catch((error) => {
  print({ type: "error", message: String(error?.message ?? error) });
  process.exit(1);
});
