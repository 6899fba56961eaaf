// The small "live" indicator in the header: a coloured dot and a word. Tests and CSS
// read its data-state: "live", "connecting" or "offline".

const LABELS = {
  live: "live",
  offline: "offline",
};

export function showLiveState(element, state, { reconnecting = false } = {}) {
  const label = state === "connecting" ? (reconnecting ? "reconnecting…" : "connecting…") : LABELS[state];
  element.dataset.state = state;
  element.querySelector(".live-label").textContent = label;
  element.title = state === "live" ? "Live updates are on" : `Live updates: ${label}`;
}
