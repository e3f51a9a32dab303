// Incident page: c submits the confirm form, r moves to the reject reason.
(function () {
  "use strict";
  const confirmForm = document.getElementById("confirm-form");
  const rejectForm = document.getElementById("reject-form");
  if (rejectForm && window.location.hash === "#reject-form") rejectForm.querySelector("select").focus();
  document.addEventListener("keydown", (event) => {
    if (event.target.closest("input, select, textarea") || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "c" && confirmForm) { event.preventDefault(); confirmForm.submit(); }
    else if (event.key === "r" && rejectForm) { event.preventDefault(); rejectForm.querySelector("select").focus(); }
  });
})();
