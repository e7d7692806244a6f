// A generation job's page: polls progress.json and updates the figures until the job ends.
(function () {
  "use strict";
  var node = document.querySelector("[data-progress-url]");
  if (!node) return;
  function field(name) { return document.querySelector('[data-field="' + name + '"]'); }
  function render(s) {
    field("bar").value = s.percent;
    field("status").textContent = s.status;
    field("succeeded").textContent = s.succeeded + " / " + s.total;
    field("failed").textContent = s.failed;
    field("requests_sent").textContent = s.requests_sent;
    field("retries").textContent = s.retries;
    field("tokens_used").textContent = s.tokens_used + (s.token_cap ? " / " + s.token_cap : "");
    field("items_created").textContent = s.items_created;
    if (s.message) field("message").textContent = s.message;
  }
  function poll() {
    fetch(node.dataset.progressUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (data) render(data);
        if (!data || !data.finished) window.setTimeout(poll, 1500);
        else window.location.reload();  // show the errors and samples tables
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  if (node.dataset.finished === "0") window.setTimeout(poll, 1000);
})();
