// The RLHF loop page: one chart of the passes over time (items scored, auto-labelled,
// sent to humans, errors found; model-human agreement on the check share on a second
// axis). Served by the app with its plotly.js; no inline script, so a strict CSP holds.
(function () {
  "use strict";

  var node = document.getElementById("chart-loop");
  var source = document.getElementById("loop-data");
  if (!node || !source) { return; }
  var data = JSON.parse(source.textContent);

  var theme = window.AttuneChartTheme;  // chart-theme.js, loaded first
  var css = theme.css;
  function empty(text) { theme.empty(node, text); }

  function draw() {
    if (!data.id.length) { empty("No pass yet."); return; }
    if (typeof window.Plotly === "undefined") {
      empty("The chart library did not load; the numbers are in the table.");
      return;
    }
    var x = data.started_at;
    var series = [
      ["items_scored", "Scored", "--text"],
      ["auto_labelled", "Auto-labelled", "--accent"],
      ["sent_to_humans", "Sent to humans", "--warn"],
      ["errors_found", "Errors found", "--danger"]
    ];
    var traces = series.map(function (s) {
      return { x: x, y: data[s[0]], name: s[1], mode: "lines+markers",
        line: { color: css(s[2]) || undefined, width: 2 } };
    });
    traces.push({ x: x, y: data.check_agreement, name: "Agreement on checks", yaxis: "y2",
      mode: "lines+markers", line: { dash: "dot", width: 2, color: css("--muted") || undefined } });
    var text = css("--text"), grid = css("--border");
    window.Plotly.react(node, traces, {
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      font: { color: text, family: getComputedStyle(document.body).fontFamily, size: 12 },
      margin: { l: 52, r: 52, t: 8, b: 44 },
      xaxis: { title: { text: "Pass started" }, gridcolor: grid, linecolor: grid },
      yaxis: { title: { text: "Items" }, gridcolor: grid, linecolor: grid, rangemode: "tozero" },
      yaxis2: { title: { text: "Agreement" }, overlaying: "y", side: "right", range: [0, 1] },
      legend: { orientation: "h", y: -0.25 }
    }, { displaylogo: false, responsive: true });
  }
  draw();
  new MutationObserver(draw).observe(document.documentElement,
    { attributes: true, attributeFilter: ["data-theme"] });
}());
