// The login token, kept in localStorage so a reload (or a second tab) stays signed in.

const KEY = "gql_feed.session";

/** Returns {token, expiresAt, userId} or null when absent, unreadable or already expired. */
export function loadSession() {
  let session;
  try {
    session = JSON.parse(localStorage.getItem(KEY) || "null");
  } catch {
    session = null;
  }
  if (!session || typeof session.token !== "string") return null;
  // An expired token would only earn an UNAUTHENTICATED error: drop it up front.
  if (session.expiresAt && Date.parse(session.expiresAt) <= Date.now()) {
    clearSession();
    return null;
  }
  return session;
}

export function saveSession({ token, expiresAt, user }) {
  localStorage.setItem(KEY, JSON.stringify({ token, expiresAt, userId: user?.id ?? null }));
}

export function clearSession() {
  localStorage.removeItem(KEY);
}

/** Calls onChange(session|null) when another tab logs in or out. */
export function watchSession(onChange) {
  window.addEventListener("storage", (event) => {
    if (event.key === KEY || event.key === null) onChange(loadSession());
  });
}
