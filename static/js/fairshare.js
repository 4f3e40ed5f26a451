/* Fairshare pages: draw every chart whose configuration the server put in a JSON block
   (partials/chart.html), on load and after htmx swaps a part of the page. No inline script:
   the Content-Security-Policy allows only files from this origin. */
"use strict";

function fairshareDrawCharts(root) {
  root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
    if (canvas.dataset.drawn === "1") return;
    var block = document.getElementById(canvas.dataset.chart);
    if (!block || typeof Chart === "undefined") return;
    canvas.dataset.drawn = "1";
    new Chart(canvas, JSON.parse(block.textContent));
  });
}

document.addEventListener("DOMContentLoaded", function () { fairshareDrawCharts(document); });
document.addEventListener("htmx:afterSwap", function (event) { fairshareDrawCharts(event.target); });
