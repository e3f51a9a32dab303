// Evidence picture: pointing at a legend entry or a box marks both; choosing one (click, tap,
// Enter, or its number key) opens a close-up of that object in a dialog, enlarged to fit.
// Without this script (or <dialog>) the links open the close-up picture itself.
(function () {
  "use strict";
  const figure = document.getElementById("evidence-figure");
  const dialog = document.getElementById("evidence-zoom");
  if (!figure || !dialog || typeof dialog.showModal !== "function") return;
  const zoomImg = document.getElementById("evidence-zoom-img");
  const caption = document.getElementById("evidence-zoom-caption");
  const MAX_ZOOM = 4; // beyond this a JPEG's blocks show more than the object

  function parts(number) {
    return figure.querySelectorAll(`[data-object="${number}"]`);
  }

  function mark(target, on) {
    const part = target instanceof Element ? target.closest("[data-object]") : null;
    if (part) parts(part.dataset.object).forEach((el) => el.classList.toggle("is-active", on));
  }

  ["mouseover", "focusin"].forEach((type) => figure.addEventListener(type, (e) => mark(e.target, true)));
  ["mouseout", "focusout"].forEach((type) => figure.addEventListener(type, (e) => mark(e.target, false)));

  function fit() {
    const body = zoomImg.parentElement;
    const roomW = Math.max(1, body.clientWidth);
    const roomH = Math.max(1, window.innerHeight - 120);
    const w = zoomImg.naturalWidth, h = zoomImg.naturalHeight;
    if (!w || !h) return;
    const k = Math.min(MAX_ZOOM, roomW / w, roomH / h);
    zoomImg.width = Math.max(1, Math.round(w * k));
    zoomImg.height = Math.max(1, Math.round(h * k));
  }

  function open(number) {
    const entry = figure.querySelector(`.evidence-object[data-object="${number}"]`);
    if (!entry) return;
    caption.textContent = entry.textContent.replace(/\s+/g, " ").trim();
    zoomImg.removeAttribute("width");
    zoomImg.removeAttribute("height");
    zoomImg.onload = fit;
    zoomImg.src = entry.getAttribute("href");
    if (!dialog.open) dialog.showModal();
    if (zoomImg.complete) fit();
  }

  figure.addEventListener("click", (e) => {
    const link = e.target instanceof Element ? e.target.closest("a[data-object]") : null;
    if (!link || e.ctrlKey || e.metaKey || e.shiftKey) return; // a new tab still gets the picture
    e.preventDefault();
    open(link.dataset.object);
  });
  dialog.addEventListener("click", (e) => { if (e.target === dialog) dialog.close(); }); // the backdrop
  window.addEventListener("resize", () => { if (dialog.open) fit(); });
  document.addEventListener("keydown", (e) => {
    if (e.target.closest("input, select, textarea") || e.ctrlKey || e.metaKey || e.altKey) return;
    if (/^[1-9]$/.test(e.key) && figure.querySelector(`.evidence-object[data-object="${e.key}"]`)) {
      e.preventDefault();
      open(e.key);
    }
  });
})();
