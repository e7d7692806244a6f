// Models pages: the calibration reliability diagram (version page) and live training
// progress (job page: polls progress.json, updates the bar, the figures and the loss
// curve). Served by the app with its plotly.js; no inline script, so a strict CSP holds.
(function () {
  "use strict";

  var theme = window.AttuneChartTheme;  // chart-theme.js, loaded first
  var css = theme.css, empty = theme.empty;
  function hasPlotly() { return typeof window.Plotly !== "undefined"; }
  function layout(xTitle, yTitle, extra) {
    return theme.layout(xTitle, yTitle, Object.assign({ margin: { l: 52, r: 12, t: 8, b: 44 } }, extra));
  }
  var CONFIG = { displaylogo: false, responsive: true };

  // --- Reliability diagram -----------------------------------------------------------
  var reliabilityNode = document.getElementById("chart-reliability");
  var reliabilityData = document.getElementById("reliability-data");
  if (reliabilityNode && reliabilityData) {
    var chart = JSON.parse(reliabilityData.textContent);
    var drawReliability = function () {
      if (!chart.before) { empty(reliabilityNode, "No held-out pairs to draw."); return; }
      if (!hasPlotly()) { empty(reliabilityNode, "The chart library did not load; the numbers are in the table."); return; }
      var traces = [
        { x: [0, 1], y: [0, 1], name: "Perfect calibration", mode: "lines",
          line: { color: css("--muted"), dash: "dot", width: 1 } },
        { x: chart.before.prob_pred, y: chart.before.prob_true, name: "Raw margins",
          mode: "lines+markers", line: { color: css("--warn"), width: 2 } }
      ];
      if (chart.after) {
        traces.push({ x: chart.after.prob_pred, y: chart.after.prob_true, name: "Calibrated",
          mode: "lines+markers", line: { color: css("--accent"), width: 2 } });
      }
      window.Plotly.react(reliabilityNode, traces,
        layout("Predicted P(a ≻ b)", "Observed frequency", {
          xaxis: { range: [0, 1], title: { text: "Predicted P(a ≻ b)" } },
          yaxis: { range: [0, 1], title: { text: "Observed frequency" } } }), CONFIG);
    };
    drawReliability();
    new MutationObserver(drawReliability).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
  }

  // --- Live training progress ----------------------------------------------------------
  var jobNode = document.querySelector("[data-progress-url]");
  var jobData = document.getElementById("job-data");
  if (!jobNode || !jobData) return;
  var lossNode = document.getElementById("chart-loss");
  var state = JSON.parse(jobData.textContent);

  function field(name) { return jobNode.closest("main").querySelector('[data-field="' + name + '"]'); }
  function fmt(value, digits, unit) {
    if (value === null || value === undefined) return "—";
    return Number(value).toFixed(digits) + (unit || "");
  }
  function drawLoss() {
    var loss = state.history.filter(function (p) { return p.loss !== undefined && p.loss !== null; });
    var evals = state.history.filter(function (p) { return p.eval_accuracy !== undefined && p.eval_accuracy !== null; });
    if (!loss.length && !evals.length) { empty(lossNode, "The curve appears after the first logged steps."); return; }
    if (!hasPlotly()) { empty(lossNode, "The chart library did not load; the figures are above."); return; }
    var traces = [
      { x: loss.map(function (p) { return p.step; }), y: loss.map(function (p) { return p.loss; }),
        name: "Training loss", mode: "lines", line: { color: css("--accent"), width: 2 } },
      { x: evals.map(function (p) { return p.step; }), y: evals.map(function (p) { return p.eval_accuracy; }),
        name: "Eval accuracy", mode: "lines+markers", yaxis: "y2", line: { color: css("--ok"), width: 2 } }
    ];
    window.Plotly.react(lossNode, traces, layout("Step", "Loss", {
      margin: { l: 52, r: 56, t: 8, b: 44 },
      yaxis2: { title: { text: "Accuracy" }, overlaying: "y", side: "right", range: [0, 1] }
    }), CONFIG);
  }
  function render() {
    field("bar").value = state.percent;
    field("status").textContent = state.status;
    field("step").textContent = state.step + " / " + state.total_steps;
    field("epoch").textContent = fmt(state.epoch, 2);
    field("loss").textContent = fmt(state.loss, 4);
    field("eval_accuracy").textContent = fmt(state.eval_accuracy, 3);
    field("pairs_per_second").textContent = fmt(state.pairs_per_second, 1);
    field("eta_seconds").textContent = fmt(state.eta_seconds, 0, " s");
    field("cpu_percent").textContent = fmt(state.cpu_percent, 0, " %");
    field("memory_mb").textContent = fmt(state.memory_mb, 0, " MB");
    field("device").textContent = state.device || "—";
    if (state.message) field("message").textContent = state.message;
    drawLoss();
  }
  function poll() {
    fetch(jobNode.dataset.progressUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (data) { state = data; render(); }
        if (!state.finished) window.setTimeout(poll, 1500);
        else if (state.version_id) window.location.reload();  // show the version link
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  render();
  if (!state.finished) window.setTimeout(poll, 1000);
})();
