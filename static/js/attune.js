// Attune's shared behaviour: theme switching and the small-screen menu. No dependencies.
(function () {
  "use strict";
  function csrfToken(form) {
    var input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }
  var select = document.querySelector("[data-theme-select]");
  if (select) {
    select.addEventListener("change", function () {
      var form = select.form;
      document.documentElement.setAttribute("data-theme", select.value);
      var body = new FormData(form);
      fetch(form.action, {
        method: "POST", body: body, credentials: "same-origin",
        headers: { "Accept": "application/json", "X-CSRFToken": csrfToken(form) }
      });
    });
  }
  var toggle = document.querySelector(".nav-toggle");
  var nav = document.getElementById("site-nav");
  if (toggle && nav) {
    toggle.addEventListener("click", function () {
      var open = nav.classList.toggle("open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }
})();
