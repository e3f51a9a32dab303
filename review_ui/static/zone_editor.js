// Zone editor: polygons in normalised coordinates drawn as SVG over the snapshot.
(function () {
  "use strict";
  const root = document.getElementById("editor");
  if (!root) return;
  const svg = document.getElementById("zone-svg");
  const select = document.getElementById("zone-select");
  const problems = document.getElementById("problems");
  const NS = "http://www.w3.org/2000/svg";
  const doc = JSON.parse(document.getElementById("initial-document").textContent);
  doc.camera_id = root.dataset.camera;
  doc.zones = doc.zones || [];
  let current = doc.zones.length ? 0 : -1;
  let dragging = null;

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
    draw();
  }
  function draw() {
    svg.replaceChildren();
    doc.zones.forEach((z, zi) => {
      const poly = document.createElementNS(NS, "polygon");
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
  }
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
    });
  });
  svg.addEventListener("mousedown", (event) => {
    if (event.button !== 0) return;
    if (event.target.classList.contains("handle")) { dragging = Number(event.target.dataset.point); event.preventDefault(); return; }
    if (!zone()) newZone();
    zone().polygon.push(toUnit(event));
    draw();
  });
  svg.addEventListener("mousemove", (event) => {
    if (dragging === null || !zone()) return;
    zone().polygon[dragging] = toUnit(event);
    draw();
  });
  window.addEventListener("mouseup", () => { dragging = null; });
  svg.addEventListener("contextmenu", (event) => {
    if (!event.target.classList.contains("handle")) return;
    event.preventDefault();
    zone().polygon.splice(Number(event.target.dataset.point), 1);
    draw();
  });
  select.addEventListener("change", () => { current = Number(select.value); draw(); });
  document.getElementById("add-zone").addEventListener("click", newZone);
  document.getElementById("delete-point").addEventListener("click", () => { if (zone()) { zone().polygon.pop(); draw(); } });
  document.getElementById("delete-zone").addEventListener("click", () => {
    if (current < 0) return; doc.zones.splice(current, 1); current = doc.zones.length - 1; draw();
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
      li.textContent = (p.key ? p.key + ": " : "") + p.message; return li;
    }));
  }
  const api = "/api/v1/zones/" + encodeURIComponent(root.dataset.node) + "/" + encodeURIComponent(root.dataset.camera);
  document.getElementById("save-zones").addEventListener("click", async () => {
    const response = await fetch(api, {
      method: "PUT", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": root.dataset.csrf },
      body: JSON.stringify({ document: JSON.stringify(cleaned(), null, 2) }),
    });
    const body = await response.json();
    if (!response.ok) {
      showProblems((body.detail && body.detail.problems) || [{ key: "", message: JSON.stringify(body.detail) }]);
      return;
    }
    showProblems([]);
    const line = document.getElementById("version-line");
    line.innerHTML = "";
    line.append(root.dataset.saved + " v", Object.assign(document.createElement("span"), { id: "version", textContent: body.version }),
      " — ", Object.assign(document.createElement("span"), { id: "applied", className: "waiting", textContent: root.dataset.waiting }));
    if (!body.published) showProblems([{ key: "mqtt", message: body.publish_error }]);
    pollApplied();
  });
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
  if (document.getElementById("applied") && document.getElementById("applied").className === "waiting") pollApplied();
})();
