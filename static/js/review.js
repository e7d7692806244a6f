// Reviewer pages: j/k through the disagreement queue; 1/2/3 and Ctrl+Enter when adjudicating.
// Everything also works with the mouse and Tab alone.
(function () {
  "use strict";
  function isTyping(target) {
    var tag = target && target.tagName;
    if (!tag) return false;
    if (target.isContentEditable || tag === "TEXTAREA" || tag === "SELECT") return true;
    return tag === "INPUT" && !/^(radio|checkbox|button|submit|reset)$/.test(target.type);
  }

  var links = Array.prototype.slice.call(document.querySelectorAll("[data-queue-link]"));
  var form = document.getElementById("adjudicate-form");

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (form && event.key === "Enter" && (event.ctrlKey || event.metaKey) && target.form === form) {
      event.preventDefault();
      if (typeof form.requestSubmit === "function") form.requestSubmit(); else form.submit();
      return;
    }
    if (isTyping(target) || event.ctrlKey || event.metaKey || event.altKey) return;
    if (links.length && (event.key === "j" || event.key === "k")) {
      event.preventDefault();
      var at = links.indexOf(document.activeElement);
      var next = event.key === "j" ? at + 1 : (at < 0 ? 0 : at - 1);
      links[Math.max(0, Math.min(links.length - 1, next))].focus();
      return;
    }
    var digit = /^(?:Digit|Numpad)([1-3])$/.exec(event.code || "");
    if (form && digit) {
      var name = event.shiftKey ? "-strength" : "-choice";
      var value = event.shiftKey ? digit[1] : { 1: "A", 2: "B", 3: "tie" }[digit[1]];
      var input = form.querySelector('input[name$="' + name + '"][value="' + value + '"]');
      if (input) { event.preventDefault(); input.checked = true; input.focus(); }
    }
  });
})();
