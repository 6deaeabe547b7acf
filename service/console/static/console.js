// admatch console: charts (Apache ECharts, served by the service), copy buttons, confirmations and
// the upload progress bar. No inline scripts: the page's data comes in <script type="application/json">.
(function () {
  "use strict";
  var PALETTE = ["#1a56b8", "#2e9d5b", "#d9822b", "#8e44ad", "#c0392b", "#16a085", "#7f8c8d"];

  function lineChart(el, chart, labels, publisher) {
    var counts = publisher ? ["impressions", "viewable_impressions", "clicks"] : ["impressions", "clicks", "invalid_total", "conversions"];
    var series = counts.map(function (k) {
      return { name: labels[k], type: k === "impressions" || k === "viewable_impressions" ? "bar" : "line",
               data: chart.counts[k], yAxisIndex: 0 };
    });
    series.push({ name: labels.money, type: "line", data: chart.money, yAxisIndex: 1, lineStyle: { width: 3 } });
    if (publisher) {
      series.push({ name: labels.fill_rate, type: "line", data: chart.fill_rate, yAxisIndex: 1, lineStyle: { type: "dashed" } });
      series.push({ name: labels.viewability, type: "line", data: chart.viewability, yAxisIndex: 1, lineStyle: { type: "dotted" } });
    }
    return {
      color: PALETTE, animation: false, tooltip: { trigger: "axis" }, legend: { top: 0 },
      grid: { left: 56, right: 64, top: 40, bottom: 36 },
      xAxis: { type: "category", data: chart.x },
      yAxis: [{ type: "value", name: labels.impressions + " / " + labels.clicks },
              { type: "value", name: publisher ? labels.money + " / %" : labels.money }],
      series: series
    };
  }

  function pieChart(items) {
    return { color: PALETTE, animation: false, tooltip: { trigger: "item" },
             series: [{ type: "pie", radius: ["35%", "65%"], data: items, label: { formatter: "{b}: {c}" } }] };
  }

  function drawCharts() {
    var data = document.getElementById("chart-data");
    if (!data || !window.echarts) { return; }
    var d = JSON.parse(data.textContent);
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var name = el.getAttribute("data-chart");
      var option = name === "invalid" ? pieChart(d.invalid || []) : lineChart(el, d.charts[name], d.labels, !!d.publisher);
      var chart = window.echarts.init(el, null, { renderer: "svg" });
      chart.setOption(option);
      el.setAttribute("data-drawn", "1");
      window.addEventListener("resize", function () { chart.resize(); });
    });
  }

  function wireCopy() {
    document.querySelectorAll("[data-copy]").forEach(function (btn) {
      btn.addEventListener("click", function () {
        var src = document.getElementById(btn.getAttribute("data-copy"));
        src.select();
        if (navigator.clipboard) { navigator.clipboard.writeText(src.value); } else { document.execCommand("copy"); }
      });
    });
  }

  function wireConfirm() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (ev) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { ev.preventDefault(); }
      });
    });
  }

  // A large CSV: send it with XMLHttpRequest to show upload progress, then show the answer page.
  function wireProgress() {
    document.querySelectorAll("form[data-progress]").forEach(function (form) {
      form.addEventListener("submit", function (ev) {
        var bar = document.getElementById(form.getAttribute("data-progress"));
        if (!bar || !window.FormData) { return; }
        ev.preventDefault();
        bar.hidden = false;
        var xhr = new XMLHttpRequest();
        xhr.open("POST", form.action);
        xhr.upload.addEventListener("progress", function (e) {
          if (e.lengthComputable) { bar.value = Math.round(100 * e.loaded / e.total); }
        });
        xhr.addEventListener("load", function () {
          bar.value = 100;
          document.open(); document.write(xhr.responseText); document.close();
        });
        xhr.send(new FormData(form));
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts(); wireCopy(); wireConfirm(); wireProgress();
  });
})();
