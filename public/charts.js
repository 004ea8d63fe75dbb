// Draws every chart container with the locally served ECharts (SVG renderer,
// so chart text is in the DOM). The option JSON is rendered by the server into
// data-option; the same numbers are in a table beside each chart.
(function () {
  "use strict";
  function draw(el) {
    if (el.dataset.drawn || typeof echarts === "undefined") return;
    var option;
    try {
      option = JSON.parse(el.dataset.option);
    } catch (e) {
      return;
    }
    el.dataset.drawn = "true";
    var chart = echarts.init(el, null, { renderer: "svg" });
    chart.setOption(option);
    window.addEventListener("resize", function () { chart.resize(); });
  }
  function drawAll() {
    document.querySelectorAll(".kt-chart[data-option]").forEach(draw);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
  // Client-side navigation may insert new charts after load.
  new MutationObserver(drawAll).observe(document.documentElement, { childList: true, subtree: true });
})();
