// GraphiQL for gql_feed: a sign-up and login bar, and a fetcher that sends queries and mutations as
// JSON and streams subscriptions over Server-Sent Events (graphql-sse, distinct mode),
// both with the logged-in user's token. No inline script: the page's CSP allows none.
"use strict";

const endpoint = window.location.pathname; // GraphiQL is served at the endpoint itself
const TOKEN_KEY = "gql_feed.graphiql.token";
const NAME_KEY = "gql_feed.graphiql.name";

// One operation, so it runs as it stands. Lines stay short enough for the editor's
// half of a 1,280-pixel window.
const EXAMPLE = `# Welcome to gql_feed's GraphiQL.
#
# 1. Sign up or log in in the bar above:
#    every operation then carries your token.
# 2. Run this subscription (the ▶ button, or
#    Ctrl-Enter). It streams over Server-Sent
#    Events: create or edit a post (the web
#    client at /, another tab, or curl) and
#    watch each event arrive. Stop ends it.
#
# The Docs button (top left) shows every query
# and mutation, and what each needs.

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
  // The read under way then fails with an AbortError, which is the end, not an error.
  const iterator = {
    next: () =>
      results.next().catch((error) => {
        if (controller.signal.aborted) return { value: undefined, done: true };
        throw error;
      }),
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

async function graphql(query, variables) {
  const response = await fetch(endpoint, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query, variables }),
  });
  return response.json();
}

// A refusal in words: the message, and for bad input what is wrong with each field.
function problem(body) {
  const [error] = body.errors;
  const fields = error.extensions?.fields;
  return fields ? Object.values(fields).join(" ") : error.message;
}

const LOGIN = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token user { name } } }";
const SIGNUP = "mutation($i: SignupInput!) { signup(input: $i) { id } }";

document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const error = document.getElementById("login-error");
  error.textContent = "";
  const email = form.get("email");
  const password = form.get("password");
  if (event.submitter?.value === "signup") {
    const name = String(form.get("name") ?? "").trim();
    if (!name) {
      error.textContent = "Enter a name to sign up.";
      return;
    }
    const signup = await graphql(SIGNUP, { i: { email, name, password } });
    if (signup.errors) {
      error.textContent = problem(signup);
      return;
    }
  }
  const body = await graphql(LOGIN, { e: email, p: password });
  if (body.errors) {
    error.textContent = problem(body);
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, body.data.login.token);
  sessionStorage.setItem(NAME_KEY, body.data.login.user.name);
  event.target.reset();
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
