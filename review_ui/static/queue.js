// Queue: keyboard shortcuts and live update: Server-Sent Events from /events carry the change
// token; when EventSource is missing or fails, poll /api/v1/changes every 2 s instead.
(function () {
  "use strict";
  const box = document.getElementById("queue");
  if (!box) return;
  let selected = 0;
  let token = box.dataset.token;

  function rows() { return Array.from(box.querySelectorAll("[data-incident]")); }
  function mark() {
    const all = rows();
    if (selected >= all.length) selected = Math.max(0, all.length - 1);
    all.forEach((row, i) => row.classList.toggle("selected", i === selected));
    if (all[selected]) all[selected].scrollIntoView({ block: "nearest" });
  }
  async function refresh() {
    const url = new URL(window.location.href);
    url.searchParams.set("partial", "1");
    const response = await fetch(url, { credentials: "same-origin" });
    if (response.ok) { box.innerHTML = await response.text(); mark(); }
  }
  let live = false;  // an open event stream: polling pauses
  let polling = false;
  async function changed(next) {
    if (next && next !== token) { token = next; box.dataset.token = token; await refresh(); }
  }
  async function poll() {
    if (!live) {
      try {
        const response = await fetch("/api/v1/changes", { credentials: "same-origin" });
        if (response.ok) await changed((await response.json()).token);
      } catch (e) { /* offline for a moment: try again next tick */ }
    }
    window.setTimeout(poll, 2000);
  }
  function startPolling() {
    if (!polling) { polling = true; window.setTimeout(poll, 2000); }
  }
  function listen() {
    if (typeof window.EventSource !== "function") { box.dataset.live = "poll"; startPolling(); return; }
    const source = new EventSource("/events", { withCredentials: true });
    source.addEventListener("open", () => { live = true; box.dataset.live = "sse"; });
    source.addEventListener("change", (event) => { changed(event.data); });
    source.addEventListener("error", () => {
      // EventSource retries by itself; meanwhile (or for good, once it gives up) poll.
      live = false; box.dataset.live = "poll"; startPolling();
    });
  }
  function api(path, body) {
    return fetch("/api/v1/incidents/" + encodeURIComponent(path), {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": box.dataset.csrf },
      body: JSON.stringify(body || {}),
    });
  }
  // A short message at the bottom; with `undoId`, an Undo button (key z) while the window lasts.
  let toastTimer = null;
  function toast(text, undoId, seconds) {
    document.querySelectorAll(".toast").forEach((old) => old.remove());
    window.clearTimeout(toastTimer);
    const note = document.createElement("div");
    note.className = "toast"; note.setAttribute("role", "status");
    const words = document.createElement("span"); words.textContent = text; note.appendChild(words);
    if (undoId && seconds > 0) {
      const button = document.createElement("button");
      button.type = "button"; button.id = "undo"; button.textContent = box.dataset.undo + " (z)";
      button.addEventListener("click", () => undo(undoId));
      note.appendChild(button);
    }
    document.body.appendChild(note);
    toastTimer = window.setTimeout(() => note.remove(), Math.max(4, seconds || 0) * 1000);
  }
  async function undo(incidentId) {
    const response = await api(incidentId + "/undo");
    if (response.ok) { toast(box.dataset.undone); await refresh(); }
  }
  async function confirmSelected() {
    const row = rows()[selected];
    if (!row || box.dataset.canReview !== "1" || row.dataset.status !== "pending") return;
    if (row.dataset.state === "cleared") {
      // Already cleared on the street: the incident page asks remind anyway / close as rectified.
      window.location = "/incidents/" + encodeURIComponent(row.dataset.incident) + "#decision";
      return;
    }
    const response = await api(row.dataset.incident + "/verdict", { verdict: "confirmed", note: "" });
    if (response.ok) {
      const result = await response.json();
      toast(box.dataset.confirmed, row.dataset.incident, result.undo_s);
      await refresh();
    }
  }
  document.addEventListener("keydown", (event) => {
    if (event.target.closest("input, select, textarea") || event.ctrlKey || event.metaKey || event.altKey) return;
    const row = rows()[selected];
    if (event.key === "j") { selected = Math.min(selected + 1, rows().length - 1); mark(); }
    else if (event.key === "k") { selected = Math.max(selected - 1, 0); mark(); }
    else if (event.key === "Enter" && row) { window.location = "/incidents/" + encodeURIComponent(row.dataset.incident); }
    else if (event.key === "c") { confirmSelected(); }
    else if (event.key === "z" && document.getElementById("undo")) { document.getElementById("undo").click(); }
    else if (event.key === "r" && row) { window.location = "/incidents/" + encodeURIComponent(row.dataset.incident) + "#reject-form"; }
    else return;
    event.preventDefault();
  });
  mark();
  listen();
})();
