// Incident page: c confirms, r opens the reject reasons, z undoes while the window lasts;
// the undo bar counts down and goes when the reminder has left.
(function () {
  "use strict";
  const confirmForm = document.getElementById("confirm-form");
  const rejectDetails = document.getElementById("reject-details");
  const undoForm = document.getElementById("undo-form");
  const undoBar = document.getElementById("undo-bar");
  function openReject() {
    if (!rejectDetails) return;
    rejectDetails.open = true;
    rejectDetails.querySelector("select").focus();
  }
  if (window.location.hash === "#reject-form") openReject();
  document.addEventListener("keydown", (event) => {
    if (event.target.closest("input, select, textarea") || event.ctrlKey || event.metaKey || event.altKey) return;
    // With the sidewalk already cleared, c must not pick between remind and close: no shortcut.
    if (event.key === "c" && confirmForm && !confirmForm.querySelector("[name=cleared_action]")) {
      event.preventDefault(); confirmForm.submit();
    } else if (event.key === "r" && rejectDetails) { event.preventDefault(); openReject(); }
    else if (event.key === "z" && undoForm) { event.preventDefault(); undoForm.submit(); }
  });
  if (undoBar) {
    let left = Number(undoBar.dataset.seconds) || 0;
    const text = undoBar.querySelector("span");
    const template = text.textContent.replace(String(left), "{n}");
    const tick = window.setInterval(() => {
      left -= 1;
      if (left <= 0) { window.clearInterval(tick); undoBar.remove(); return; }
      text.textContent = template.replace("{n}", String(left));
    }, 1000);
  }
})();
