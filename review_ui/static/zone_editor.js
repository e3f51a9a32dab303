// Zone editor: polygons in normalised coordinates drawn as SVG over the snapshot, and the whole
// zone file as YAML beside it. The text is what gets saved; the drawing and the form edit a plain
// copy (`doc`) that the server writes back into the text (POST .../validate with `data`), so
// fields without an input, comments and numbers as written all survive.
(function () {
  "use strict";
  const root = document.getElementById("editor");
  if (!root) return;
  const svg = document.getElementById("zone-svg");
  const select = document.getElementById("zone-select");
  const problems = document.getElementById("problems");
  const saveButton = document.getElementById("save-zones");
  const NS = "http://www.w3.org/2000/svg";
  const yamlPane = document.getElementById("zone-yaml");
  const yamlProblems = document.getElementById("yaml-problems");
  let doc = JSON.parse(document.getElementById("initial-document").textContent);
  doc.zones = Array.isArray(doc.zones) ? doc.zones : [];
  let current = doc.zones.length ? 0 : -1;
  let drawingAhead = false; // the drawing changed and the text does not show it yet
  let dragging = null;
  let liveProblems = []; // the latest answer of /validate: [{key, message, severity}]

  function zone() { return current >= 0 ? doc.zones[current] : null; }
  function round(v) { return Math.round(Math.min(1, Math.max(0, v)) * 10000) / 10000; }
  function toUnit(event) {
    const box = svg.getBoundingClientRect();
    return [round((event.clientX - box.left) / box.width), round((event.clientY - box.top) / box.height)];
  }
  function newZone() {
    const n = doc.zones.length + 1;
    doc.zones.push({ id: "zone-" + n, kind: "monitored", polygon: [], shop: { id: "", name: "" } });
    current = doc.zones.length - 1;
    edited();
  }
  function draw() {
    svg.replaceChildren();
    doc.zones.forEach((z, zi) => {
      const poly = document.createElementNS(NS, "polygon");
      z.polygon = Array.isArray(z.polygon) ? z.polygon : [];
      poly.setAttribute("points", z.polygon.map((p) => p[0] * 1000 + "," + p[1] * 1000).join(" "));
      poly.setAttribute("class", "zone zone-" + z.kind + (zi === current ? " hit" : ""));
      poly.dataset.zone = zi;
      svg.appendChild(poly);
      if (zi !== current) return;
      z.polygon.forEach((p, pi) => {
        // The SVG stretches to the snapshot (preserveAspectRatio="none"), so a
        // round 7 px handle needs different radii along x and y.
        const box = svg.getBoundingClientRect();
        const handle = document.createElementNS(NS, "ellipse");
        handle.setAttribute("cx", p[0] * 1000); handle.setAttribute("cy", p[1] * 1000);
        handle.setAttribute("rx", 7000 / Math.max(box.width, 1));
        handle.setAttribute("ry", 7000 / Math.max(box.height, 1));
        handle.setAttribute("class", "handle");
        handle.dataset.point = pi;
        svg.appendChild(handle);
      });
    });
    select.replaceChildren(...doc.zones.map((z, i) => {
      const o = document.createElement("option"); o.value = i; o.textContent = z.id; o.selected = i === current; return o;
    }));
    fillFields();
    paintProblems();
  }
  function edited() { draw(); drawingAhead = true; scheduleCheck(); }
  function fillFields() {
    const z = zone();
    document.querySelectorAll("#zone-fields [data-field]").forEach((input) => {
      input.disabled = !z;
      if (!z) { input.value = ""; return; }
      const f = input.dataset.field;
      if (f === "shop_id") input.value = (z.shop && z.shop.id) || "";
      else if (f === "shop_name") input.value = (z.shop && z.shop.name) || "";
      else if (f === "classes") input.value = (z.classes || []).join(", ");
      else input.value = z[f] === undefined ? "" : z[f];
    });
  }
  document.querySelectorAll("#zone-fields [data-field]").forEach((input) => {
    input.addEventListener("input", () => {
      const z = zone(); if (!z) return;
      const f = input.dataset.field; const v = input.value.trim();
      z.shop = z.shop || { id: "", name: "" };
      if (f === "shop_id") z.shop.id = v;
      else if (f === "shop_name") z.shop.name = v;
      else if (f === "classes") { if (v) z.classes = v.split(",").map((s) => s.trim()).filter(Boolean); else delete z.classes; }
      else if (["min_overlap", "dwell_s", "clear_s"].includes(f)) { if (v === "") delete z[f]; else z[f] = Number(v); }
      else z[f] = v;
      if (f === "id" || f === "kind") draw();
      drawingAhead = true;
      scheduleCheck();
    });
  });
  svg.addEventListener("mousedown", (event) => {
    if (event.button !== 0) return;
    if (event.target.classList.contains("handle")) { dragging = Number(event.target.dataset.point); event.preventDefault(); return; }
    if (!zone()) newZone();
    zone().polygon.push(toUnit(event));
    edited();
  });
  svg.addEventListener("mousemove", (event) => {
    if (dragging === null || !zone()) return;
    zone().polygon[dragging] = toUnit(event);
    edited();
  });
  window.addEventListener("mouseup", () => { dragging = null; });
  svg.addEventListener("contextmenu", (event) => {
    if (!event.target.classList.contains("handle")) return;
    event.preventDefault();
    zone().polygon.splice(Number(event.target.dataset.point), 1);
    edited();
  });
  select.addEventListener("change", () => { current = Number(select.value); draw(); });
  document.getElementById("add-zone").addEventListener("click", newZone);
  document.getElementById("delete-point").addEventListener("click", () => { if (zone()) { zone().polygon.pop(); edited(); } });
  document.getElementById("delete-zone").addEventListener("click", () => {
    if (current < 0) return; doc.zones.splice(current, 1); current = doc.zones.length - 1; edited();
  });

  function cleaned() {
    return Object.assign({}, doc, { zones: doc.zones.map((z) => {
      const out = Object.assign({}, z);
      if (!out.shop || !out.shop.id) delete out.shop;
      else if (!out.shop.name) out.shop = { id: out.shop.id, name: out.shop.id };
      return out;
    }) });
  }
  function showProblems(list) {
    problems.replaceChildren(...list.map((p) => {
      const li = document.createElement("p"); li.className = "error";
      li.textContent = (p.key ? p.key + ": " : "") + (p.text || p.message); return li;
    }));
  }
  const api = "/api/v1/zones/" + encodeURIComponent(root.dataset.node) + "/" + encodeURIComponent(root.dataset.camera);
  function send(method, url, body) {
    return fetch(url, {
      method: method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": root.dataset.csrf },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  // Live validation: the server's own checks (POST .../validate stores nothing), ~400 ms after
  // the last edit; an answer to an older edit is dropped. Save stays disabled while the latest
  // answer has errors (warnings allowed); the PUT validates again in any case.
  const CHECK_DELAY_MS = 400;
  let checkTimer = null;
  let checkSeq = 0;
  function scheduleCheck() {
    showProblems([]); // what the last Save said is stale after an edit
    root.dataset.validation = "pending";
    checkSeq += 1;
    window.clearTimeout(checkTimer);
    checkTimer = window.setTimeout(runCheck, CHECK_DELAY_MS);
  }
  // One round trip answers both ways: with `data` (the drawing moved) the server writes it into
  // the text and checks that; without (the text was typed) it checks the text and sends back
  // its data for the drawing. An answer to an older edit is dropped (checkSeq).
  async function runCheck() {
    window.clearTimeout(checkTimer); checkTimer = null;
    const seq = checkSeq;
    const withData = drawingAhead;
    const body = { document: yamlPane.value };
    if (withData) body.data = cleaned();
    let list; let answer = null;
    try {
      const response = await send("POST", api + "/validate", body);
      if (seq !== checkSeq) return;
      if (response.ok) { answer = await response.json(); list = answer.problems; }
      else list = [{ key: "", severity: "warning", message: "live validation unavailable (HTTP " + response.status + ")" }];
    } catch (err) {
      if (seq !== checkSeq) return;
      list = [{ key: "", severity: "warning", message: "live validation unavailable: " + err }];
    }
    if (seq !== checkSeq) return;
    if (answer) {
      if (withData && answer.data) { yamlPane.value = answer.document; drawingAhead = false; }
      if (!withData && answer.data) {
        doc = answer.data; doc.zones = Array.isArray(doc.zones) ? doc.zones : [];
        current = Math.min(Math.max(current, doc.zones.length ? 0 : -1), doc.zones.length - 1);
        draw();
      }
      root.dataset.yaml = answer.data ? "ok" : "broken";
    }
    liveProblems = list;
    root.dataset.validation = list.some((p) => p.severity === "error") ? "errors" : "ok";
    paintProblems(); // not draw() after a form edit: that would rewrite the field being typed in
  }
  yamlPane.addEventListener("input", () => { drawingAhead = false; scheduleCheck(); });
  async function settled() {
    // Save and revert act on the text: let a pending edit reach it first.
    if (checkTimer !== null || drawingAhead) { checkSeq += 1; await runCheck(); }
  }
  // "zones[2].shop.id" -> 2; anything not about one zone -> -1
  function zoneOf(key) {
    const m = /^zones\[(\d+)\]/.exec(key || "");
    return m ? Number(m[1]) : -1;
  }
  // where a problem of the current zone shows: next to its field, else under the zone select
  const FIELD_OF = { id: "id", kind: "kind", shop: "shop_id", classes: "classes", min_overlap: "min_overlap", dwell_s: "dwell_s", clear_s: "clear_s" };
  function fieldOf(key) {
    const rest = key.replace(/^zones\[\d+\]\.?/, "");
    if (rest === "shop.name") return "shop_name";
    const head = rest.split(/[.[]/)[0];
    return FIELD_OF[head] || "zone";
  }
  function problemLine(p, withKey) {
    const line = document.createElement("p");
    line.className = "problem " + (p.severity === "warning" ? "warning" : "error");
    line.dataset.key = p.key || "";
    line.textContent = (withKey && p.key ? p.key + ": " : "") + (p.text || p.message);
    return line;
  }
  // In the YAML pane every problem shows with its line and key: "line 12 · zones[0].polygon: ..."
  function yamlLine(p) {
    const line = problemLine(p, true);
    if (p.line) {
      const where = document.createElement("span"); where.className = "where";
      where.textContent = root.dataset.line.replace("{line}", p.line);
      line.prepend(where);
    }
    return line;
  }
  const slots = { zone: root.querySelector("[data-problems-for=zone]") };
  document.querySelectorAll("#zone-fields [data-field]").forEach((input) => {
    const slot = document.createElement("div");
    slot.className = "field-problems"; slot.dataset.problemsFor = input.dataset.field;
    input.closest("label").after(slot);
    slots[input.dataset.field] = slot;
  });
  const elsewhere = document.getElementById("live-problems");
  function paintProblems() {
    svg.querySelectorAll("polygon.zone").forEach((poly) => {
      const zi = Number(poly.dataset.zone);
      poly.classList.toggle("invalid", liveProblems.some((p) => p.severity === "error" && zoneOf(p.key) === zi));
    });
    const placed = {}; const rest = [];
    Object.keys(slots).forEach((k) => { placed[k] = []; });
    liveProblems.forEach((p) => {
      if (current >= 0 && zoneOf(p.key) === current) {
        const field = fieldOf(p.key);
        placed[field].push(problemLine(p, field === "zone"));
      } else rest.push(problemLine(p, true));
    });
    Object.keys(slots).forEach((k) => slots[k].replaceChildren(...placed[k]));
    document.querySelectorAll("#zone-fields [data-field]").forEach((input) => {
      const bad = placed[input.dataset.field].some((line) => line.classList.contains("error"));
      if (bad) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
    });
    elsewhere.replaceChildren(...rest);
    yamlProblems.replaceChildren(...liveProblems.map(yamlLine));
    if (root.dataset.yaml === "broken") {
      const hint = document.createElement("p"); hint.className = "problem warning"; hint.textContent = root.dataset.yamlBroken;
      yamlProblems.append(hint);
    }
    const blocked = liveProblems.some((p) => p.severity === "error");
    saveButton.disabled = blocked;
    saveButton.title = blocked ? root.dataset.fixErrors : "";
  }

  // Save shows what changes against the version running, and publishes only when confirmed.
  const panel = document.getElementById("diff-panel");
  const publishButton = document.getElementById("publish-zones");
  let pending = null; // what Publish does: { kind: "save" } or { kind: "revert", version }
  async function showDiff(text, action) {
    const response = await send("POST", api + "/diff", { document: text });
    if (!response.ok) { showProblems([{ key: "", message: "diff: HTTP " + response.status }]); return; }
    const diff = await response.json();
    const against = diff.against === "edge" ? root.dataset.againstEdge
      : diff.against === "stored" ? root.dataset.againstStored.replace("{version}", diff.version)
      : root.dataset.againstNothing;
    document.getElementById("diff-against").textContent = diff.changed ? against : root.dataset.diffNone;
    document.getElementById("diff").replaceChildren(...diff.lines.map((l) => {
      const span = document.createElement("span"); span.className = "diff-" + l.kind; span.textContent = l.text; return span;
    }));
    pending = action;
    publishButton.disabled = !diff.changed && action.kind === "save";
    panel.hidden = false;
    panel.scrollIntoView({ block: "nearest" });
  }
  saveButton.addEventListener("click", async () => {
    await settled();
    if (root.dataset.validation === "errors") return;
    await showDiff(yamlPane.value, { kind: "save" });
  });
  document.getElementById("cancel-publish").addEventListener("click", () => { panel.hidden = true; pending = null; });
  publishButton.addEventListener("click", async () => {
    const action = pending; if (!action) return;
    const response = action.kind === "revert"
      ? await send("POST", api + "/revert", { version: action.version })
      : await send("PUT", api, { document: yamlPane.value });
    const body = await response.json();
    if (!response.ok) {
      showProblems((body.detail && body.detail.problems) || [{ key: "", message: JSON.stringify(body.detail) }]);
      return;
    }
    panel.hidden = true; pending = null;
    if (action.kind === "revert") { yamlPane.value = action.document; drawingAhead = false; scheduleCheck(); }
    showProblems([]);
    const line = document.getElementById("version-line");
    line.innerHTML = "";
    line.append(root.dataset.saved + " v", Object.assign(document.createElement("span"), { id: "version", textContent: body.version }),
      " — ", Object.assign(document.createElement("span"), { id: "applied", className: "waiting", textContent: root.dataset.waiting }));
    if (action.kind === "revert") line.append(" ", root.dataset.reverted.replace("{version}", body.version));
    if (!body.published) showProblems([{ key: "mqtt", message: body.publish_error }]);
    refreshHistory();
    pollApplied();
  });
  // Revert: the old version's document, its diff against what runs, then Publish.
  document.getElementById("history").addEventListener("click", async (event) => {
    const button = event.target.closest("button.revert"); if (!button) return;
    const version = Number(button.dataset.version);
    const response = await fetch(api + "/versions/" + version, { credentials: "same-origin" });
    if (!response.ok) return;
    const old = await response.json();
    await showDiff(old.document, { kind: "revert", version: version, document: old.document });
  });
  // The history is rendered by the server (local time, the page's language): take it from there.
  async function refreshHistory() {
    const response = await fetch(window.location.pathname, { credentials: "same-origin" });
    if (!response.ok) return;
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    const fresh = page.getElementById("history");
    if (fresh) document.getElementById("history").replaceChildren(...fresh.childNodes);
  }
  async function pollApplied() {
    const response = await fetch(api + "/status", { credentials: "same-origin" });
    if (response.ok) {
      const status = await response.json();
      const span = document.getElementById("applied");
      if (span && status.applied) { span.className = "applied"; span.textContent = root.dataset.applied; return; }
    }
    window.setTimeout(pollApplied, 1000);
  }
  draw();
  runCheck();
  if (document.getElementById("applied") && document.getElementById("applied").className === "waiting") pollApplied();
})();
