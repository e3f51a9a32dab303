// Every page: choosing a language applies it at once (the ✓ button is for pages without scripts).
(function () {
  "use strict";
  const form = document.getElementById("locale-form");
  if (!form) return;
  form.querySelector(".locale-apply").hidden = true;
  form.querySelector("select").addEventListener("change", () => form.submit());
})();
