// Attunement dashboard: each error zone's error rate over time, from zones.json (the
// latest stored error-zone search). No inline script, so the strict CSP holds.
(function () {
  "use strict";
  var node = document.getElementById("chart-zones");
  if (!node || !node.dataset.zonesUrl) return;

  var theme = window.AttuneChartTheme;  // chart-theme.js, loaded first
  var css = theme.css;
  function empty(text) { theme.empty(node, text); }
  var data = null;

  function draw() {
    if (!data) return;
    if (typeof window.Plotly === "undefined") {
      empty("The chart library did not load; the zones are listed above.");
      return;
    }
    var traces = data.zones.map(function (zone) {
      var terms = zone.top_terms.slice(0, 3).map(function (t) { return t[0]; }).join(", ");
      return {
        x: zone.trend.map(function (p) { return p.start; }),
        y: zone.trend.map(function (p) { return p.error_rate; }),
        text: zone.trend.map(function (p) { return p.errors + " of " + p.n + " wrong"; }),
        name: "Zone " + zone.index + (terms ? " (" + terms + ")" : ""),
        mode: "lines+markers"
      };
    });
    if (!traces.length) { empty("No error zones."); return; }
    var grid = css("--border");
    window.Plotly.react(node, traces, {
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      font: { color: css("--text"), family: getComputedStyle(document.body).fontFamily, size: 12 },
      margin: { l: 52, r: 12, t: 8, b: 44 },
      xaxis: { title: { text: "Bucket start" }, gridcolor: grid, linecolor: grid },
      yaxis: { title: { text: "Error rate" }, range: [0, 1], gridcolor: grid, linecolor: grid },
      legend: { orientation: "h", y: -0.25 }, hovermode: "x unified"
    }, { displaylogo: false, responsive: true });
  }

  fetch(node.dataset.zonesUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
    .then(function (response) { return response.ok ? response.json() : null; })
    .then(function (json) {
      if (!json) { empty("The zone data could not be loaded."); return; }
      data = json;
      draw();
    })
    .catch(function () { empty("The zone data could not be loaded."); });
  new MutationObserver(draw).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
})();
