// GraphQL over HTTP: plain JSON requests, and the multipart request spec for file uploads.

export const ENDPOINT = "/graphql";

/**
 * An operation that failed: either the server answered with `errors`, or the request
 * itself failed. `code` and `fields` come from the first error's extensions, which is
 * where the server puts Apollo-style codes (BAD_USER_INPUT carries {field: message}).
 */
export class GraphQLRequestError extends Error {
  constructor(message, { errors = [], status = 0 } = {}) {
    super(message);
    this.name = "GraphQLRequestError";
    this.errors = errors;
    this.status = status;
  }

  get code() {
    const withCode = this.errors.find((e) => e?.extensions?.code);
    return withCode ? withCode.extensions.code : null;
  }

  /** {fieldName: message} from every BAD_USER_INPUT error, merged. */
  get fields() {
    const fields = {};
    for (const error of this.errors) {
      const extra = error?.extensions?.fields;
      if (extra && typeof extra === "object") Object.assign(fields, extra);
    }
    return fields;
  }
}

/**
 * Runs one operation and returns its `data`.
 * files: {"variables.input.image": File}; the matching variables must be null, as the
 * multipart spec puts each file in its own part and points at it from the `map`.
 */
export async function request(query, variables = {}, { token = null, files = null } = {}) {
  const headers = { Accept: "application/graphql-response+json, application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;

  let body;
  const filePaths = files ? Object.keys(files).filter((path) => files[path]) : [];
  if (filePaths.length) {
    body = new FormData();
    body.append("operations", JSON.stringify({ query, variables }));
    const map = {};
    filePaths.forEach((path, i) => { map[String(i)] = [path]; });
    body.append("map", JSON.stringify(map));
    filePaths.forEach((path, i) => body.append(String(i), files[path], files[path].name));
    // The server refuses multipart without it: a plain HTML form cannot set this header,
    // so it proves the request came from script (CSRF protection, as in Apollo Server).
    headers["Apollo-Require-Preflight"] = "true";
    // No Content-Type: the browser writes it with the multipart boundary.
  } else {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify({ query, variables });
  }

  let response;
  try {
    response = await fetch(ENDPOINT, { method: "POST", headers, body });
  } catch {
    throw new GraphQLRequestError("Cannot reach the server. Check your connection and try again.");
  }

  let payload = null;
  try {
    payload = await response.json();
  } catch {
    // Not JSON (a proxy error page, say): fall through to the status check below.
  }

  if (payload && Array.isArray(payload.errors) && payload.errors.length) {
    const message = payload.errors.map((e) => e.message).filter(Boolean).join("; ");
    throw new GraphQLRequestError(message || "The server refused the request.", {
      errors: payload.errors,
      status: response.status,
    });
  }
  if (!response.ok || !payload || !payload.data) {
    throw new GraphQLRequestError(`The server answered ${response.status} ${response.statusText}.`, {
      status: response.status,
    });
  }
  return payload.data;
}
