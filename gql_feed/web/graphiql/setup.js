// GraphiQL for gql_feed: a login bar, and a fetcher that sends queries and mutations as
// JSON and streams subscriptions over Server-Sent Events (graphql-sse, distinct mode),
// both with the logged-in user's token. No inline script: the page's CSP allows none.
"use strict";

const endpoint = window.location.pathname; // GraphiQL is served at the endpoint itself
const TOKEN_KEY = "gql_feed.graphiql.token";
const NAME_KEY = "gql_feed.graphiql.name";

const EXAMPLE = `# Welcome to gql_feed's GraphiQL.
#
# 1. Log in above (or sign up first: run the signup mutation below, then log in).
#    Every operation then carries your token as an Authorization header.
# 2. Run the subscription: it streams over Server-Sent Events. Create or edit a post
#    (from the web client at /, another tab, or curl) and watch each event arrive.
#
# mutation { signup(input: {email: "ann@example.com", name: "Ann", password: "correct horse"}) { id } }

subscription {
  postEvents {
    id
    action
    post { id title creator { name } }
  }
}
`;

function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { authorization: `Bearer ${token}` } : {};
}

function operationType(params, opts) {
  const definitions = opts?.documentAST?.definitions ?? [];
  const operation = definitions.find(
    (d) => d.kind === "OperationDefinition" && (!params.operationName || d.name?.value === params.operationName),
  );
  return operation?.operation ?? "query";
}

// The events of a text/event-stream body: `next` results until `complete`.
async function* sseResults(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event = text;
        else if (field === "data") data.push(text);
      }
      if (event === "complete") return;
      if (event === "next") yield JSON.parse(data.join("\n"));
    }
  }
}

async function fetcher(params, opts) {
  const headers = { "content-type": "application/json", ...authHeaders(), ...(opts?.headers ?? {}) };
  if (operationType(params, opts) !== "subscription") {
    const response = await fetch(endpoint, { method: "POST", headers, body: JSON.stringify(params) });
    return response.json();
  }
  const controller = new AbortController();
  const response = await fetch(endpoint, {
    method: "POST",
    headers: { ...headers, accept: "text/event-stream" },
    body: JSON.stringify(params),
    signal: controller.signal,
  });
  if (!response.ok) return response.json(); // 401 and the like: a GraphQL error body
  const results = sseResults(response);
  // GraphiQL's stop button calls return(): that ends the request, so the server lets go.
  const iterator = {
    next: () => results.next(),
    return: (value) => {
      controller.abort();
      return Promise.resolve({ value, done: true });
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}

function showLogin() {
  const name = sessionStorage.getItem(NAME_KEY);
  document.getElementById("login-fields").hidden = Boolean(name);
  document.getElementById("logged-in").hidden = !name;
  document.getElementById("who").textContent = name ?? "";
}

document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const error = document.getElementById("login-error");
  error.textContent = "";
  const response = await fetch(endpoint, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      query: "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token user { name } } }",
      variables: { e: form.get("email"), p: form.get("password") },
    }),
  });
  const body = await response.json();
  if (body.errors) {
    error.textContent = body.errors[0].message;
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, body.data.login.token);
  sessionStorage.setItem(NAME_KEY, body.data.login.user.name);
  showLogin();
});

document.getElementById("logout").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(NAME_KEY);
  showLogin();
});

showLogin();
ReactDOM.createRoot(document.getElementById("graphiql")).render(
  React.createElement(GraphiQL, { fetcher, defaultQuery: EXAMPLE, defaultEditorToolsVisibility: false }),
);
