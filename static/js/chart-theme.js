// Shared by the chart scripts: theme colours from the CSS custom properties, a Plotly
// layout in the theme, and the "no chart" message. Loaded before the page's own script.
(function () {
  "use strict";
  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }
  function empty(node, text) {
    var p = document.createElement("p");
    p.className = "chart-empty";
    p.textContent = text;
    node.replaceChildren(p);
  }
  function layout(xTitle, yTitle, extra) {
    var grid = css("--border");
    return Object.assign({
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      font: { color: css("--text"), family: getComputedStyle(document.body).fontFamily, size: 12 },
      margin: { l: 56, r: 16, t: 8, b: 44 },
      xaxis: { title: { text: xTitle }, gridcolor: grid, linecolor: grid, zerolinecolor: grid },
      yaxis: { title: { text: yTitle }, gridcolor: grid, linecolor: grid, zerolinecolor: grid },
      legend: { orientation: "h", y: -0.25 }
    }, extra || {});
  }
  window.AttuneChartTheme = { css: css, empty: empty, layout: layout };
})();
