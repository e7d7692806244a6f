// Attunement dashboard: calibration over time (ECE, accuracy, Brier) and the latest
// reliability diagram, drawn with the app-served plotly.js from calibration.json (the
// pre-aggregated metric points). No inline script, so the strict CSP holds.
(function () {
  "use strict";
  var trendNode = document.getElementById("chart-trend");
  var reliabilityNode = document.getElementById("chart-reliability");
  if (!trendNode || !trendNode.dataset.seriesUrl) return;

  var theme = window.AttuneChartTheme;  // chart-theme.js, loaded first
  var css = theme.css, empty = theme.empty;
  function layout(xTitle, yTitle, extra) {
    // A wider right margin: the trend chart has a second y-axis.
    return theme.layout(xTitle, yTitle, Object.assign({ margin: { l: 52, r: 56, t: 8, b: 44 } }, extra));
  }
  var CONFIG = { displaylogo: false, responsive: true };
  var data = null;

  function draw() {
    if (!data) return;
    if (typeof window.Plotly === "undefined") {
      [trendNode, reliabilityNode].forEach(function (node) {
        empty(node, "The chart library did not load; the latest figures are above.");
      });
      return;
    }
    if (!data.points.length) {
      empty(trendNode, "No metric points in this window.");
    } else {
      var t = data.points.map(function (p) { return p.start; });
      var series = function (key) { return data.points.map(function (p) { return p[key]; }); };
      window.Plotly.react(trendNode, [
        { x: t, y: series("ece"), name: "ECE", mode: "lines+markers", line: { color: css("--warn"), width: 2 } },
        { x: t, y: series("brier"), name: "Brier", mode: "lines+markers", line: { color: css("--danger"), width: 2 } },
        { x: t, y: series("accuracy"), name: "Accuracy", mode: "lines+markers", yaxis: "y2",
          line: { color: css("--ok"), width: 2 } }
      ], layout("Bucket start", "ECE, Brier", {
        yaxis2: { title: { text: "Accuracy" }, overlaying: "y", side: "right", range: [0, 1] },
        hovermode: "x unified"
      }), CONFIG);
    }
    var rel = data.reliability;
    if (!rel || !rel.prob_pred || !rel.prob_pred.length) {
      empty(reliabilityNode, "No reliability bins in the latest bucket.");
      return;
    }
    window.Plotly.react(reliabilityNode, [
      { x: [0, 1], y: [0, 1], name: "Perfect calibration", mode: "lines",
        line: { color: css("--muted"), dash: "dot", width: 1 } },
      { x: rel.prob_pred, y: rel.prob_true, name: "Observed", mode: "lines+markers",
        text: (rel.counts || []).map(function (c) { return c + " outcomes"; }),
        line: { color: css("--accent"), width: 2 } }
    ], layout("Predicted P(a ≻ b)", "Observed frequency", {
      xaxis: { range: [0, 1], title: { text: "Predicted P(a ≻ b)" } },
      yaxis: { range: [0, 1], title: { text: "Observed frequency" } },
      margin: { l: 52, r: 12, t: 8, b: 44 }
    }), CONFIG);
  }

  fetch(trendNode.dataset.seriesUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
    .then(function (response) { return response.ok ? response.json() : null; })
    .then(function (json) {
      if (!json) { empty(trendNode, "The chart data could not be loaded."); return; }
      data = json;
      draw();
    })
    .catch(function () { empty(trendNode, "The chart data could not be loaded."); });
  new MutationObserver(draw).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
})();
