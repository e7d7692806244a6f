// Control charts, model evolution and the user-preference timeline, drawn with the
// app-served plotly.js from the /api/monitoring/ answers named by each chart's data-url
// (pre-aggregated points). Each .chart[data-chart] names its kind. No inline script, so
// the strict CSP holds.
(function () {
  "use strict";
  var nodes = Array.prototype.slice.call(document.querySelectorAll(".chart[data-chart][data-url]"));
  if (!nodes.length) return;

  var CONFIG = { displaylogo: false, responsive: true };
  var PALETTE = ["--accent", "--warn", "--ok", "--danger", "--muted"];
  var cache = {};

  var theme = window.AttuneChartTheme, css = theme.css, empty = theme.empty, layout = theme.layout;
  function colour(i) { return css(PALETTE[i % PALETTE.length]); }
  function field(points, key) { return points.map(function (p) { return p[key]; }); }

  var DRAW = {
    // A control chart: the values, centre line, ±3σ limits and the points that signal.
    control: function (node, data) {
      var pts = data.points;
      if (!pts.length) { empty(node, "No points in this window."); return; }
      var t = field(pts, "start");
      var flagged = pts.filter(function (p) { return p.signals.length; });
      var traces = [
        { x: t, y: field(pts, "value"), name: data.metric, mode: "lines+markers",
          line: { color: colour(0), width: 2 }, text: pts.map(function (p) { return "n = " + p.n; }) },
        { x: t, y: field(pts, "ucl"), name: "UCL (+3σ)", mode: "lines", line: { color: css("--danger"), dash: "dash", width: 1 } },
        { x: t, y: field(pts, "lcl"), name: "LCL (−3σ)", mode: "lines", line: { color: css("--danger"), dash: "dash", width: 1 } }
      ];
      if (data.center !== null) {
        traces.push({ x: [t[0], t[t.length - 1]], y: [data.center, data.center], name: "centre",
          mode: "lines", line: { color: css("--muted"), width: 1 } });
      }
      if (flagged.length) {
        traces.push({ x: field(flagged, "start"), y: field(flagged, "value"), name: "out of control",
          mode: "markers", marker: { color: css("--danger"), size: 11, symbol: "x" },
          text: flagged.map(function (p) { return "rules " + p.signals.join(", "); }) });
      }
      window.Plotly.react(node, traces, layout("Bucket start", node.dataset.y || data.metric), CONFIG);
    },
    // One line per version of the trajectory's field (accuracy or ECE).
    evolution: function (node, data) {
      var key = node.dataset.field;
      var traces = data.versions.filter(function (v) { return v.trajectory.length; }).map(function (v, i) {
        return { x: field(v.trajectory, "start"), y: field(v.trajectory, key), name: v.ref,
          mode: "lines+markers", line: { color: colour(i), width: 2 } };
      });
      if (!traces.length) { empty(node, "No version has outcomes in this window."); return; }
      window.Plotly.react(node, traces, layout("Bucket start", key === "ece" ? "ECE" : "Accuracy"), CONFIG);
    },
    "evolution-reliability": function (node, data) {
      var traces = [{ x: [0, 1], y: [0, 1], name: "perfect", mode: "lines",
        line: { color: css("--muted"), dash: "dot", width: 1 } }];
      data.versions.forEach(function (v, i) {
        var rel = v.production.reliability;
        if (rel && rel.prob_pred && rel.prob_pred.length) {
          traces.push({ x: rel.prob_pred, y: rel.prob_true, name: v.ref, mode: "lines+markers",
            line: { color: colour(i), width: 2 } });
        }
      });
      if (traces.length === 1) { empty(node, "No reliability bins yet."); return; }
      window.Plotly.react(node, traces, layout("Predicted P(a ≻ b)", "Observed frequency", {
        xaxis: { range: [0, 1], title: { text: "Predicted P(a ≻ b)" } },
        yaxis: { range: [0, 1], title: { text: "Observed frequency" } }
      }), CONFIG);
    },
    "evolution-compare": function (node, data) {
      var refs = field(data.versions, "ref");
      window.Plotly.react(node, [
        { x: refs, y: data.versions.map(function (v) { return v.training.heldout_accuracy; }), name: "held-out (at training)",
          type: "bar", marker: { color: colour(0) } },
        { x: refs, y: data.versions.map(function (v) { return v.production.accuracy; }), name: "production (vs. consensus)",
          type: "bar", marker: { color: colour(2) } }
      ], layout("Version", "Accuracy", { barmode: "group", yaxis: { range: [0, 1], title: { text: "Accuracy" } } }), CONFIG);
    },
    // Stacked shares of each choice (A / tie / B) per bucket.
    shares: function (node, data) {
      if (!data.points.length) { empty(node, "No votes in this window."); return; }
      var t = field(data.points, "start");
      var traces = data.labels.map(function (label, i) {
        return { x: t, y: data.points.map(function (p) { return p.shares[i]; }), name: label,
          type: "scatter", mode: "lines", stackgroup: "shares", line: { color: colour(i), width: 1 } };
      });
      window.Plotly.react(node, traces, layout("Bucket start", "Share of votes", { yaxis: { range: [0, 1], title: { text: "Share of votes" } } }), CONFIG);
    },
    agreement: function (node, data) {
      if (!data.points.length) { empty(node, "No votes in this window."); return; }
      var t = field(data.points, "start");
      window.Plotly.react(node, [
        { x: t, y: field(data.points, "agreement"), name: "votes = consensus", mode: "lines+markers", line: { color: colour(2), width: 2 } },
        { x: t, y: field(data.points, "alpha"), name: "Krippendorff's α", mode: "lines+markers", line: { color: colour(0), width: 2 } }
      ], layout("Bucket start", "Agreement", { yaxis: { range: [-0.2, 1], title: { text: "Agreement" } } }), CONFIG);
    }
  };

  function load(url) {
    if (!cache[url]) {
      cache[url] = fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .catch(function () { return null; });
    }
    return cache[url];
  }

  function drawAll() {
    nodes.forEach(function (node) {
      load(node.dataset.url).then(function (data) {
        if (!data) { empty(node, "The chart data could not be loaded."); return; }
        if (typeof window.Plotly === "undefined") { empty(node, "The chart library did not load."); return; }
        DRAW[node.dataset.chart](node, data);
      });
    });
  }

  drawAll();
  new MutationObserver(drawAll).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
})();
