// The page's wiring: who is signed in, which view shows, and what each form does.
// The work itself lives in the modules imported below.

import * as api from "./api.js";
import { FeedView } from "./feed.js";
import { attachPreview, clearErrors, imageProblem, showError, whileBusy } from "./forms.js";
import { LiveFeed, liveUrl } from "./live.js";
import { showLiveState } from "./live-status.js";
import { clearSession, loadSession, saveSession, watchSession } from "./session.js";

const PER_PAGE = 5;
const MIN_TEXT = 5; // the server's rule for titles and contents, checked early to save a round trip

const $ = (selector) => document.querySelector(selector);

const state = { token: null, me: null };

// --- messages ----------------------------------------------------------------------

const messages = $("#messages");
let messageTimer = null;

/** Says something in the page's live region; info fades, errors stay until replaced. */
function announce(text, kind = "info") {
  clearTimeout(messageTimer);
  messages.dataset.kind = kind;
  messages.textContent = text;
  if (kind === "info") messageTimer = setTimeout(() => { messages.textContent = ""; }, 6000);
}

function describe(error) {
  const code = error && error.code;
  return code ? `${error.message} (${code})` : (error && error.message) || "Something went wrong.";
}

// --- session -----------------------------------------------------------------------

/** Runs an operation with the token; an UNAUTHENTICATED answer ends the session. */
async function authed(operation) {
  try {
    return await operation(state.token);
  } catch (error) {
    if (error && error.code === "UNAUTHENTICATED") endSession("Your session has expired. Please log in again.");
    throw error;
  }
}

async function startSession(token, user = null) {
  state.token = token;
  try {
    state.me = user || (await api.me(token));
  } catch (error) {
    if (error.code === "UNAUTHENTICATED") {
      endSession("Your session has expired. Please log in again.");
      return;
    }
    announce(`Could not load your profile: ${describe(error)}`, "error");
  }
  showFeedView();
  feed.rerender();
  // The live feed refetches the page once subscribed; fetching now as well shows the
  // posts without waiting for the socket (and works if WebSockets are blocked).
  live.start();
  feed.show(1);
}

function endSession(message, kind = "error") {
  if (!state.token) return;
  live.stop();
  clearSession();
  state.token = null;
  state.me = null;
  feed.clear();
  showAuthView();
  announce(message, kind);
}

// --- views -------------------------------------------------------------------------

function showAuthView() {
  $("#feed-view").hidden = true;
  $("#account").hidden = true;
  $("#auth-view").hidden = false;
}

function showFeedView() {
  $("#auth-view").hidden = true;
  $("#feed-view").hidden = false;
  $("#account").hidden = false;
  renderMe();
}

function renderMe() {
  const me = state.me;
  $("#account-name").textContent = me ? me.name : "";
  $("#current-status").textContent = me && me.status ? me.status : "(no status yet)";
}

// --- feed and live updates -----------------------------------------------------------

const feed = new FeedView({
  elements: {
    list: $("#posts"),
    empty: $("#feed-empty"),
    pageInfo: $("#page-info"),
    newer: $("#page-newer"),
    older: $("#page-older"),
  },
  perPage: PER_PAGE,
  loadPage: (page, perPage) => authed((token) => api.fetchPage(token, page, perPage)),
  onError: (error) => announce(`Could not load posts: ${describe(error)}`, "error"),
  actions: {
    isOwn: (post) => Boolean(state.me && post.creator && post.creator.id === state.me.id),
    save: async (post, changes) => {
      const updated = await authed((token) => api.updatePost(token, post.id, changes));
      feed.ownUpdated(updated);
      announce("Post saved.");
    },
    remove: async (post, button) => {
      if (!window.confirm(`Delete the post “${post.title}”?`)) return;
      button.disabled = true;
      try {
        await authed((token) => api.deletePost(token, post.id));
        feed.ownDeleted(post);
        announce("Post deleted.");
      } catch (error) {
        button.disabled = false;
        announce(`Could not delete the post: ${describe(error)}`, "error");
      }
    },
  },
});

const live = new LiveFeed({
  url: liveUrl("/graphql"),
  query: api.POST_EVENTS_SUBSCRIPTION,
  getToken: () => state.token,
  onEvent: (event) => feed.applyEvent(event),
  onResync: () => feed.show(feed.page),
  onState: (liveState, detail) => showLiveState($("#live-status"), liveState, detail),
  onAuthLost: (reason) =>
    endSession(
      reason === "expired"
        ? "Your session has expired. Please log in again."
        : "The server refused your login. Please log in again.",
    ),
  onError: (message) => announce(`Live updates: ${message}`, "error"),
});

// --- forms -------------------------------------------------------------------------

function values(form, ...names) {
  return Object.fromEntries(names.map((name) => [name, form.elements[name].value.trim()]));
}

const loginForm = $("#login-form");
loginForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(loginForm);
  const { email } = values(loginForm, "email");
  const password = loginForm.elements.password.value; // passwords are not trimmed
  try {
    const auth = await whileBusy(loginForm, () => api.login(email, password));
    saveSession(auth);
    loginForm.reset();
    await startSession(auth.token, auth.user);
    announce(`Welcome back, ${auth.user.name}.`);
  } catch (error) {
    showError(loginForm, error);
  }
});

const signupForm = $("#signup-form");
signupForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(signupForm);
  const { email, name } = values(signupForm, "email", "name");
  const password = signupForm.elements.password.value;
  try {
    // Signing up returns the user but no token: log in straight away with the same details.
    const auth = await whileBusy(signupForm, async () => {
      await api.signup({ email, name, password });
      return api.login(email, password);
    });
    saveSession(auth);
    signupForm.reset();
    await startSession(auth.token, auth.user);
    announce(`Welcome, ${auth.user.name}! Your account is ready.`);
  } catch (error) {
    showError(signupForm, error);
  }
});

$("#logout").addEventListener("click", () => endSession("You are logged out.", "info"));

const statusForm = $("#status-form");
statusForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(statusForm);
  const { status } = values(statusForm, "status");
  try {
    state.me = await whileBusy(statusForm, () => authed((token) => api.updateStatus(token, status)));
    statusForm.reset();
    renderMe();
    announce("Status updated.");
  } catch (error) {
    showError(statusForm, error);
  }
});

const createForm = $("#create-post");
const clearCreatePreview = attachPreview(createForm.elements.image, createForm.querySelector("img.preview"));
createForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(createForm);
  const { title, content } = values(createForm, "title", "content");
  const image = createForm.elements.image.files[0] || null;

  const problems = {};
  if (title.length < MIN_TEXT) problems.title = `The title needs at least ${MIN_TEXT} characters.`;
  if (content.length < MIN_TEXT) problems.content = `The content needs at least ${MIN_TEXT} characters.`;
  const imageIssue = image ? imageProblem(image) : "Choose an image for the post.";
  if (imageIssue) problems.image = imageIssue;
  if (Object.keys(problems).length) {
    showError(createForm, { fields: problems });
    return;
  }

  try {
    const post = await whileBusy(createForm, () =>
      authed((token) => api.createPost(token, { title, content, image })),
    );
    createForm.reset();
    clearCreatePreview();
    // The new post is the newest: show it on page 1, where its live event would put it too.
    if (feed.page === 1) feed.ownCreated(post);
    else feed.show(1);
    announce("Post published.");
  } catch (error) {
    showError(createForm, error);
  }
});

// --- start -------------------------------------------------------------------------

// Another tab logged in or out: follow it, so both tabs agree on who is signed in.
watchSession((session) => {
  if (!session) endSession("You were logged out in another tab.", "info");
  else if (session.token !== state.token) {
    live.stop();
    feed.clear();
    startSession(session.token);
  }
});

showLiveState($("#live-status"), "offline");
const saved = loadSession();
if (saved) startSession(saved.token);
else showAuthView();
