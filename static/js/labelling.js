// The labelling page: keyboard shortcuts, span highlighting, and the answer as JSON.
// The page works without this file (plain inputs are posted); with it, the answer is
// built here, checked for completeness before submitting, and posted as one JSON field.
(function () {
  "use strict";
  var form = document.getElementById("label-form");
  var configNode = document.getElementById("label-config");
  if (!form || !configNode) return;
  var config = JSON.parse(configNode.textContent);
  var questions = config.questions;
  var texts = config.responses;
  var labels = config.labels;
  var status = document.getElementById("label-status");
  var choiceNode = form.querySelector("[data-testid=choice]");
  var submitButton = form.querySelector("[data-testid=submit]");
  var skipForm = document.getElementById("skip-form");
  var help = document.getElementById("help");
  var helpToggle = form.querySelector("[data-help-toggle]");
  var guidelines = form.querySelector("[data-guidelines]");
  var spans = {};        // question name -> [{response, start, end, label}]
  var lastSelection = null;
  var submitting = false;
  var lastFocus = null;

  var STRENGTHS = { 1: "slightly", 2: "clearly", 3: "much" };
  var CHOICES = { A: "A is better", B: "B is better", tie: "Tie" };

  function announce(text) {
    status.textContent = "";
    // A fresh text node makes screen readers repeat an identical message.
    window.setTimeout(function () { status.textContent = text; }, 30);
  }

  function fieldset(q) {
    return form.querySelector('[data-question="' + q.name + '"]');
  }

  function checkedValue(name) {
    var input = form.querySelector('input[name="' + name + '"]:checked');
    return input ? input.value : "";
  }

  // --- Character offsets: the server counts code points, JavaScript UTF-16 units. ---
  function unitsToPoints(text, units) {
    return Array.from(text.slice(0, units)).length;
  }
  function pointsToUnits(text, points) {
    return Array.from(text).slice(0, points).join("").length;
  }

  // --- Reading the answer ---------------------------------------------------------------
  function readAnswer() {
    var answer = {};
    var problems = [];
    questions.forEach(function (q) {
      var box = fieldset(q);
      var input = "q-" + q.name;
      if (q.type === "pairwise") {
        var choice = checkedValue(input + "-choice");
        if (!choice) { problems.push({ q: q, text: "choose A, B" + (q.allow_tie ? " or tie" : "") }); return; }
        var value = { choice: choice };
        var strength = checkedValue(input + "-strength");
        if (q.strength && choice !== "tie" && strength) value.strength = parseInt(strength, 10);
        answer[q.name] = value;
      } else if (q.type === "ranking" || q.type === "rating") {
        var values = Array.prototype.map.call(box.querySelectorAll("select[data-index]"), function (s) { return s.value; });
        if (values.some(function (v) { return v === ""; })) {
          problems.push({ q: q, text: (q.type === "ranking" ? "rank" : "rate") + " every response" });
          return;
        }
        var numbers = values.map(function (v) { return parseInt(v, 10); });
        if (q.type === "rating") { answer[q.name] = numbers; return; }
        if (new Set(numbers).size !== numbers.length) { problems.push({ q: q, text: "give every response a different rank" }); return; }
        answer[q.name] = numbers.map(function (_, i) { return i; }).sort(function (a, b) { return numbers[a] - numbers[b]; });
      } else if (q.type === "text") {
        var text = box.querySelector("textarea").value;
        if (text) answer[q.name] = text;
        else if (q.required) problems.push({ q: q, text: "write the " + q.name.replace(/_/g, " ") });
      } else if (q.type === "spans") {
        if ((spans[q.name] || []).length) answer[q.name] = spans[q.name];
      } else if (q.type === "tags") {
        var tags = Array.prototype.map.call(box.querySelectorAll("input:checked"), function (c) { return c.value; });
        if (tags.length) answer[q.name] = tags;
      }
    });
    return { answer: answer, problems: problems };
  }

  function pairwiseQuestion() {
    return questions.filter(function (q) { return q.type === "pairwise"; })[0] || null;
  }

  function refresh() {
    var state = readAnswer();
    var pq = pairwiseQuestion();
    var text;
    if (pq) {
      var value = state.answer[pq.name];
      if (value) {
        text = "Your choice: " + CHOICES[value.choice];
        if (value.choice !== "tie" && pq.strength) {
          text += value.strength ? " (" + STRENGTHS[value.strength] + ")" : " (strength not set: clearly)";
        }
      } else {
        text = "No choice yet: press 1, 2" + (pq.allow_tie ? " or 3." : ".");
      }
      choiceNode.setAttribute("data-choice", value ? value.choice : "");
      form.querySelectorAll("[data-response-panel]").forEach(function (panel) {
        var index = panel.getAttribute("data-response-panel");
        var chosen = value && ((value.choice === "A" && index === "0") || (value.choice === "B" && index === "1") || (value.choice === "tie" && (index === "0" || index === "1")));
        panel.classList.toggle("chosen", !!chosen);
      });
      var group = fieldset(pq).querySelector("[data-strength-group]");
      if (group) group.disabled = !value || value.choice === "tie";
    } else {
      text = state.problems.length ? "Still needed: " + state.problems.map(function (p) { return p.text; }).join("; ") + "." : "Ready to submit.";
    }
    if (pq && state.problems.length && state.answer[pq.name]) {
      text += " Still needed: " + state.problems.map(function (p) { return p.text; }).join("; ") + ".";
    }
    choiceNode.textContent = text;
    submitButton.setAttribute("aria-disabled", state.problems.length ? "true" : "false");
    return state;
  }

  // --- Submitting -----------------------------------------------------------------------
  form.addEventListener("submit", function (event) {
    if (submitting) { event.preventDefault(); return; }
    var state = refresh();
    if (state.problems.length) {
      event.preventDefault();
      announce("Not submitted. Still needed: " + state.problems.map(function (p) { return p.text; }).join("; ") + ".");
      var first = fieldset(state.problems[0].q).querySelector("input, select, textarea");
      if (first) first.focus();
      return;
    }
    form.querySelector("[data-answer-json]").value = JSON.stringify(state.answer);
    submitting = true;
    submitButton.setAttribute("aria-disabled", "true");
    announce("Submitting…");
  });

  function submit() {
    if (typeof form.requestSubmit === "function") form.requestSubmit(submitButton);
    else submitButton.click();
  }

  function skip() {
    if (!skipForm) { announce("This project does not allow skipping."); return; }
    var reason = document.getElementById("skip-reason");
    if (reason && !reason.value.trim()) {
      reason.focus();
      announce("Type a reason for skipping, then press Enter.");
      return;
    }
    skipForm.submit();
  }

  // --- Span highlighting ----------------------------------------------------------------
  function spanQuestions() {
    return questions.filter(function (q) { return q.type === "spans"; });
  }

  function responseOf(node) {
    var element = node && (node.nodeType === 1 ? node : node.parentElement);
    return element ? element.closest(".response-text[data-response]") : null;
  }

  function offsetIn(container, node, offset) {
    var range = document.createRange();
    range.selectNodeContents(container);
    range.setEnd(node, offset);
    return range.toString().length;
  }

  function currentSelection() {
    var selection = window.getSelection();
    if (!selection || selection.rangeCount === 0 || selection.isCollapsed) return null;
    var range = selection.getRangeAt(0);
    var container = responseOf(range.startContainer);
    if (!container || container !== responseOf(range.endContainer)) return { error: "Select text inside one response." };
    var index = parseInt(container.getAttribute("data-response"), 10);
    var text = texts[index];
    var start = unitsToPoints(text, offsetIn(container, range.startContainer, range.startOffset));
    var end = unitsToPoints(text, offsetIn(container, range.endContainer, range.endOffset));
    if (end <= start) return null;
    return { response: index, start: start, end: end };
  }

  document.addEventListener("selectionchange", function () {
    var found = currentSelection();
    if (found && !found.error) lastSelection = found;
  });

  function highlight(q) {
    q = q || spanQuestions()[0];
    if (!q) return;
    var found = currentSelection() || lastSelection;
    if (!found) { announce("Select some text in a response first, then press h."); return; }
    if (found.error) { announce(found.error); return; }
    var labelSelect = fieldset(q).querySelector("[data-span-label]");
    var span = { response: found.response, start: found.start, end: found.end, label: labelSelect ? labelSelect.value : "" };
    var list = spans[q.name] = spans[q.name] || [];
    var duplicate = list.some(function (s) { return s.response === span.response && s.start === span.start && s.end === span.end && s.label === span.label; });
    if (!duplicate) list.push(span);
    lastSelection = null;
    var selection = window.getSelection();
    if (selection) selection.removeAllRanges();
    renderSpans();
    announce("Highlighted " + (span.end - span.start) + " characters in response " + labels[span.response] + ".");
  }

  function removeSpan(q, index) {
    spans[q.name].splice(index, 1);
    renderSpans();
    announce("Highlight removed.");
    var box = fieldset(q);
    var buttons = box.querySelectorAll("[data-span-list] button");
    (buttons[Math.min(index, buttons.length - 1)] || box.querySelector("[data-span-add]")).focus();
  }

  function excerpt(span) {
    var text = Array.from(texts[span.response]).slice(span.start, span.end).join("");
    return text.length > 60 ? text.slice(0, 57) + "…" : text;
  }

  function renderResponse(index) {
    var container = form.querySelector('.response-text[data-response="' + index + '"]');
    var text = texts[index];
    var marks = [];
    spanQuestions().forEach(function (q) {
      (spans[q.name] || []).forEach(function (s) {
        if (s.response === index) marks.push({ start: pointsToUnits(text, s.start), end: pointsToUnits(text, s.end), label: s.label });
      });
    });
    var cuts = [0, text.length];
    marks.forEach(function (m) { cuts.push(m.start, m.end); });
    cuts = Array.from(new Set(cuts)).sort(function (a, b) { return a - b; });
    var fragment = document.createDocumentFragment();
    for (var i = 0; i < cuts.length - 1; i++) {
      var piece = text.slice(cuts[i], cuts[i + 1]);
      var covering = marks.filter(function (m) { return m.start <= cuts[i] && m.end >= cuts[i + 1]; });
      if (!covering.length) { fragment.appendChild(document.createTextNode(piece)); continue; }
      var mark = document.createElement("mark");
      mark.textContent = piece;
      var named = covering.map(function (m) { return m.label; }).filter(Boolean);
      if (named.length) mark.title = named.join(", ");
      fragment.appendChild(mark);
    }
    container.replaceChildren(fragment);
  }

  function renderSpans() {
    spanQuestions().forEach(function (q) {
      var box = fieldset(q);
      var list = box.querySelector("[data-span-list]");
      var items = spans[q.name] || [];
      list.replaceChildren();
      items.forEach(function (span, i) {
        var li = document.createElement("li");
        var what = document.createElement("span");
        what.textContent = "Response " + labels[span.response] + ", " + span.start + "–" + span.end + (span.label ? " (" + span.label + ")" : "") + ": “" + excerpt(span) + "”";
        var remove = document.createElement("button");
        remove.type = "button";
        remove.className = "link-button";
        remove.textContent = "Remove";
        remove.setAttribute("aria-label", "Remove highlight " + (i + 1) + " in response " + labels[span.response]);
        remove.addEventListener("click", function () { removeSpan(q, i); });
        li.appendChild(what);
        li.appendChild(document.createTextNode(" "));
        li.appendChild(remove);
        list.appendChild(li);
      });
      box.querySelector("[data-span-input]").value = JSON.stringify(items);
    });
    texts.forEach(function (_, index) { renderResponse(index); });
  }

  spanQuestions().forEach(function (q) {
    var box = fieldset(q);
    try { spans[q.name] = JSON.parse(box.querySelector("[data-span-input]").value) || []; } catch (e) { spans[q.name] = []; }
    var add = box.querySelector("[data-span-add]");
    // Keep the text selection: a mouse press on the button must not clear it first.
    add.addEventListener("mousedown", function (event) { event.preventDefault(); });
    add.addEventListener("click", function () { highlight(q); });
  });
  renderSpans();

  // --- Help overlay ---------------------------------------------------------------------
  function setHelp(open) {
    if (open === !help.hidden) return;
    help.hidden = !open;
    helpToggle.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) {
      lastFocus = document.activeElement;
      help.querySelector("[data-help-close]").focus();
    } else {
      // Never leave focus on the hidden close button: Enter there would "click" it
      // instead of submitting.  Back to where the annotator was, or to the page.
      if (help.contains(document.activeElement)) document.activeElement.blur();
      if (lastFocus && lastFocus !== document.body && lastFocus.focus) lastFocus.focus();
    }
  }
  helpToggle.addEventListener("click", function () { setHelp(help.hidden); });
  help.querySelector("[data-help-close]").addEventListener("click", function () { setHelp(false); });
  help.addEventListener("click", function (event) { if (event.target === help) setHelp(false); });

  // --- Keyboard -------------------------------------------------------------------------
  function choose(value) {
    var pq = pairwiseQuestion();
    if (!pq) return;
    var input = form.querySelector('input[name="q-' + pq.name + '-choice"][value="' + value + '"]');
    if (!input) { announce("Ties are not allowed in this project."); return; }
    input.checked = true;
    refresh();
  }

  function chooseStrength(value) {
    var pq = pairwiseQuestion();
    if (!pq || !pq.strength) return;
    var current = readAnswer().answer[pq.name];
    if (!current || current.choice === "tie") { announce("Choose A or B first, then how much better."); return; }
    var input = form.querySelector('input[name="q-' + pq.name + '-strength"][value="' + value + '"]');
    if (input) { input.checked = true; refresh(); }
  }

  function isTyping(target) {
    if (!target || !target.tagName) return false;
    if (target.isContentEditable) return true;
    var tag = target.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT") return true;
    return tag === "INPUT" && !/^(radio|checkbox|button|submit|reset)$/.test(target.type);
  }

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (!help.hidden) {
      if (event.key === "Escape" || event.key === "?") { event.preventDefault(); setHelp(false); }
      return;
    }
    if (isTyping(target)) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && target.form === form) {
        event.preventDefault();
        submit();
      } else if (event.key === "Escape") {
        target.blur();  // back to the page, where the single-key shortcuts work
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); submit(); }
      return;
    }
    var digit = /^(?:Digit|Numpad)([1-3])$/.exec(event.code || "");
    if (digit) {
      event.preventDefault();
      if (event.shiftKey) chooseStrength(parseInt(digit[1], 10));
      else choose({ 1: "A", 2: "B", 3: "tie" }[digit[1]]);
      return;
    }
    switch (event.key) {
      case "?":
        event.preventDefault(); setHelp(true); break;
      case "s": case "S":
        event.preventDefault(); skip(); break;
      case "h": case "H":
        if (spanQuestions().length) { event.preventDefault(); highlight(); }
        break;
      case "g": case "G":
        if (guidelines) { event.preventDefault(); guidelines.open = !guidelines.open; }
        break;
      case "Enter":
        // Enter on a link, button or summary keeps its own meaning.
        if (/^(A|BUTTON|SUMMARY)$/.test(target.tagName)) return;
        event.preventDefault(); submit(); break;
      default:
    }
  });

  // Coming back through the history cache: the page may submit again.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) { submitting = false; refresh(); }
  });
  form.addEventListener("change", refresh);
  form.addEventListener("input", refresh);
  refresh();
  var summary = document.querySelector("[data-error-summary]");
  if (summary) summary.focus();
})();
