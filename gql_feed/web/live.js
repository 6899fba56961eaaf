// Live post events over a WebSocket, speaking the `graphql-transport-ws` subprotocol
// directly (it is small: init -> ack, subscribe, next/error/complete, ping/pong).
//
// The connection never gives up on its own: when the socket closes it comes back with
// exponential backoff and resumes with `after: <last event id>`, so the server replays
// what this page missed. Only logout, an expired token (4440) or a refused token (4403)
// stop it.

const SUBPROTOCOL = "graphql-transport-ws";

/** Close codes this client reacts to (graphql-ws PROTOCOL.md, plus the server's 4440). */
export const CloseCode = Object.freeze({
  Forbidden: 4403, // the token was refused at connection_init
  TokenExpired: 4440, // the token expired while connected
});

const ACK_TIMEOUT_MS = 10_000;
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 10_000;

/** 0.5 s, 1 s, 2 s, ... up to 10 s, each +-20% so that many clients do not retry in step. */
export function backoffDelay(attempt) {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** attempt);
  return Math.min(BACKOFF_MAX_MS, Math.round(base * (0.8 + 0.4 * Math.random())));
}

export function liveUrl(path = "/graphql") {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${window.location.host}${path}`;
}

export class LiveFeed {
  /**
   * query: the subscription text, taking an optional `$after: ID`.
   * getToken(): the current token, read at each (re)connect.
   * onEvent(event): one PostEvent, live or replayed.
   * onResync(): this page may have missed events and cannot replay them: refetch.
   * onState(state, {reconnecting}): "connecting" | "live" | "offline".
   * onAuthLost(reason): "expired" (4440, or UNAUTHENTICATED) or "refused" (4403).
   * onError(message): a problem worth telling the user; the feed keeps trying.
   */
  constructor({ url, query, getToken, onEvent, onResync, onState, onAuthLost, onError }) {
    this.url = url;
    this.query = query;
    this.getToken = getToken;
    this.onEvent = onEvent;
    this.onResync = onResync;
    this.onState = onState;
    this.onAuthLost = onAuthLost;
    this.onError = onError;

    this.lastEventId = null;
    this.socket = null;
    this.acknowledged = false;
    this.subscriptionId = null;
    this.nextId = 0;
    this.attempt = 0; // reconnects since the last acknowledged connection
    this.subscribeFailures = 0; // subscription errors since the last event
    this.everConnected = false;
    this.stopped = true;
    this.timers = new Set();

    // The browser knows when the network comes back: do not sit out the backoff then.
    window.addEventListener("online", () => {
      if (!this.stopped && !this.socket) this.connect();
    });
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.attempt = 0;
    this.connect();
  }

  /** A deliberate stop (logout): close without reconnecting. */
  stop() {
    this.stopped = true;
    this.clearTimers();
    const socket = this.socket;
    this.socket = null;
    this.subscriptionId = null;
    if (socket) socket.close(1000, "logout");
    this.lastEventId = null;
    this.everConnected = false;
    this.setState("offline");
  }

  // --- connection ----------------------------------------------------------------

  connect() {
    this.clearTimers();
    if (this.stopped) return;
    this.setState("connecting");
    let socket;
    try {
      socket = new WebSocket(this.url, SUBPROTOCOL);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    this.acknowledged = false;

    socket.addEventListener("open", () => {
      if (socket !== this.socket) return;
      const token = this.getToken();
      this.send(socket, {
        type: "connection_init",
        payload: token ? { Authorization: `Bearer ${token}` } : {},
      });
      // A server that accepts the socket but never acknowledges it is as good as down.
      this.later(ACK_TIMEOUT_MS, () => {
        if (socket === this.socket && !this.acknowledged) socket.close(4408, "no ack");
      });
    });
    socket.addEventListener("message", (message) => this.handleMessage(socket, message.data));
    // "error" is always followed by "close", which does the work.
    socket.addEventListener("close", (event) => this.handleClose(socket, event));
  }

  handleClose(socket, event) {
    if (socket !== this.socket) return; // an older socket we already gave up on
    this.socket = null;
    this.subscriptionId = null;
    this.clearTimers();
    if (this.stopped) return;

    if (event.code === CloseCode.TokenExpired || event.code === CloseCode.Forbidden) {
      this.stopped = true;
      this.setState("offline");
      this.onAuthLost(event.code === CloseCode.TokenExpired ? "expired" : "refused");
      return;
    }
    this.scheduleReconnect();
  }

  scheduleReconnect() {
    const delay = backoffDelay(this.attempt);
    this.attempt += 1;
    this.setState(navigator.onLine === false ? "offline" : "connecting");
    this.later(delay, () => this.connect());
  }

  // --- messages ------------------------------------------------------------------

  handleMessage(socket, text) {
    if (socket !== this.socket) return;
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return; // the server never sends this; ignoring it is safer than crashing the page
    }
    switch (message.type) {
      case "connection_ack":
        this.acknowledged = true;
        this.attempt = 0;
        this.subscribe(socket);
        this.everConnected = true;
        this.setState("live");
        break;
      case "ping":
        this.send(socket, { type: "pong" });
        break;
      case "next":
        if (message.id === this.subscriptionId) this.handleNext(message.payload || {});
        break;
      case "error":
        if (message.id === this.subscriptionId) this.handleSubscriptionError(socket, message.payload);
        break;
      case "complete":
        // The server ended our subscription (it may be going away): ask again, resuming.
        if (message.id === this.subscriptionId) {
          this.subscriptionId = null;
          this.later(backoffDelay(this.subscribeFailures++), () => {
            if (socket === this.socket) this.subscribe(socket);
          });
        }
        break;
      default:
        break; // pong and anything newer: nothing to do
    }
  }

  subscribe(socket) {
    this.nextId += 1;
    this.subscriptionId = String(this.nextId);
    const resuming = this.lastEventId !== null;
    this.send(socket, {
      id: this.subscriptionId,
      type: "subscribe",
      payload: { query: this.query, variables: resuming ? { after: this.lastEventId } : {} },
    });
    // Without an event id the server cannot replay, so the page must be fetched afresh.
    // Subscribing first means nothing that happens during the fetch is lost.
    if (!resuming) this.onResync();
  }

  handleNext(payload) {
    if (Array.isArray(payload.errors) && payload.errors.length) {
      this.onError(payload.errors.map((e) => e.message).join("; "));
    }
    const event = payload.data && payload.data.postEvents;
    if (!event) return;
    this.subscribeFailures = 0;
    this.lastEventId = event.id;
    this.onEvent(event);
  }

  handleSubscriptionError(socket, errors) {
    this.subscriptionId = null;
    const list = Array.isArray(errors) ? errors : [];
    const codes = list.map((e) => e && e.extensions && e.extensions.code);
    if (codes.includes("EVENT_LOG_EXPIRED")) {
      // Our last event fell out of the server's log: start afresh from a refetch.
      this.lastEventId = null;
      this.subscribe(socket);
      return;
    }
    if (codes.includes("UNAUTHENTICATED")) {
      this.stop();
      this.onAuthLost("expired");
      return;
    }
    this.onError(list.map((e) => e && e.message).filter(Boolean).join("; ") || "Live updates failed.");
    // Try again later on the same socket, slower each time, so a broken server is not hammered.
    this.later(backoffDelay(this.subscribeFailures++), () => {
      if (socket === this.socket && this.subscriptionId === null) this.subscribe(socket);
    });
  }

  // --- helpers -------------------------------------------------------------------

  send(socket, message) {
    if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  }

  setState(state) {
    this.onState(state, { reconnecting: this.everConnected });
  }

  later(ms, fn) {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
  }

  clearTimers() {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }
}
