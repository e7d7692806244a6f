// Dashboard charts with the app-served plotly.js: agreement and progress over time.
// Colours come from the theme's CSS custom properties and follow theme changes.
(function () {
  "use strict";
  var dataNode = document.getElementById("dashboard-data");
  if (!dataNode) return;
  var data = JSON.parse(dataNode.textContent);
  var agreementNode = document.getElementById("chart-agreement");
  var progressNode = document.getElementById("chart-progress");

  var theme = window.AttuneChartTheme;  // chart-theme.js, loaded first
  var empty = theme.empty;

  if (!data.history.length) {
    [agreementNode, progressNode].forEach(function (node) {
      empty(node, "No history yet: charts appear after the first recomputation.");
    });
    return;
  }
  if (typeof window.Plotly === "undefined") {
    [agreementNode, progressNode].forEach(function (node) {
      empty(node, "The chart library did not load; the numbers are in the table below.");
    });
    return;
  }

  var css = theme.css;

  var times = data.history.map(function (row) { return row.t; });
  var PALETTE = ["--accent", "--ok", "--warn", "--danger", "--muted", "--text"];

  function layout(yTitle, range) {
    var text = css("--text"), grid = css("--border");
    return {
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      font: { color: text, family: getComputedStyle(document.body).fontFamily, size: 12 },
      margin: { l: 48, r: 12, t: 8, b: 40 },
      xaxis: { gridcolor: grid, linecolor: grid, zerolinecolor: grid },
      yaxis: { title: { text: yTitle }, gridcolor: grid, linecolor: grid, zerolinecolor: grid, range: range },
      legend: { orientation: "h", y: -0.2 },
      hovermode: "x unified"
    };
  }

  function draw() {
    var agreement = data.metrics.map(function (metric, i) {
      return {
        x: times, y: data.history.map(function (row) { return row[metric.key]; }),
        name: metric.label, type: "scatter", mode: "lines+markers", connectgaps: false,
        line: { color: css(PALETTE[i % PALETTE.length]), width: 2 }
      };
    });
    var progress = [
      { x: times, y: data.history.map(function (r) { return r.n_annotations; }), name: "Annotations",
        type: "scatter", mode: "lines+markers", line: { color: css("--accent"), width: 2 } },
      { x: times, y: data.history.map(function (r) { return r.n_complete; }), name: "Complete items",
        type: "scatter", mode: "lines+markers", line: { color: css("--ok"), width: 2 } }
    ];
    var config = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["sendDataToCloud"] };
    // κ and α can be negative (worse than chance): widen the axis only when they are.
    var lowest = Math.min.apply(null, agreement.map(function (trace) {
      return Math.min.apply(null, trace.y.filter(function (v) { return v !== null; }).concat([0]));
    }));
    var range = [Math.min(-0.05, lowest - 0.05), 1.05];
    window.Plotly.react(agreementNode, agreement, layout("Agreement", range), config);
    window.Plotly.react(progressNode, progress, layout("Count"), config);
  }

  draw();
  // Redraw when the theme changes (the select in the header, or the system setting).
  new MutationObserver(draw).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
  if (window.matchMedia) {
    var query = window.matchMedia("(prefers-color-scheme: dark)");
    if (query.addEventListener) query.addEventListener("change", draw);
  }
})();
