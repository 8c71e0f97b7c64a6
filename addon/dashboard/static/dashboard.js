// Draws the dashboard's charts from the JSON embedded in the page (id "tk-data") with the
// vendored Chart.js, and, in a report file, filters the recent requests by project or key.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("tk-data").textContent);
  const palette = ["#1c7ed6", "#f76707", "#2f9e44", "#ae3ec9", "#e03131", "#0c8599",
    "#f59f00", "#5f3dc4", "#66a80f", "#c2255c"];
  const color = (i) => palette[i % palette.length];
  const name = (v) => (v === null ? "(none)" : String(v));
  const common = { animation: false, responsive: true, maintainAspectRatio: false };
  const charts = {};
  // Dollars as plain decimals: spend per hour is often far below a cent.
  const dollars = { ticks: { callback: (v) => (v === 0 ? "$0" : "$" + Number(v).toPrecision(2)) } };

  // Stacked bars: readable with one bucket as with hundreds, and the stack is the total.
  function timeChart(id, field, money) {
    const s = data.series;
    const stacked = true;
    charts[id] = new Chart(document.getElementById(id), {
      type: "bar",
      data: {
        labels: s.labels,
        datasets: s.projects.map((p, i) => ({
          label: name(p.project),
          data: p[field].map(Number),
          backgroundColor: color(i),
          borderColor: color(i),
        })),
      },
      options: {
        ...common,
        scales: { x: { stacked }, y: { stacked, beginAtZero: true, ...(money ? dollars : {}) } },
      },
    });
  }

  function modelChart() {
    const priced = data.models.filter((m) => m.cost_usd !== null);
    charts["chart-models"] = new Chart(document.getElementById("chart-models"), {
      type: "bar",
      data: {
        labels: priced.map((m) => name(m.model)),
        datasets: [{ label: "USD", data: priced.map((m) => Number(m.cost_usd)),
          backgroundColor: priced.map((_, i) => color(i)) }],
      },
      options: { ...common, indexAxis: "y", scales: { x: dollars },
        plugins: { legend: { display: false } } },
    });
  }

  function recentFilter() {
    const rows = Array.from(document.querySelectorAll("#recent tbody tr:not(.empty)"));
    const holder = document.querySelector("#recent-requests .filter");
    if (!holder || !rows.length) return;
    const value = (row, field) => row.querySelector(`td[data-field="${field}"]`).textContent;
    const choices = new Set();
    rows.forEach((r) => { choices.add("project:" + value(r, "project"));
      choices.add("key:" + value(r, "key_id")); });
    const select = document.createElement("select");
    select.add(new Option("all", ""));
    Array.from(choices).sort().forEach((c) => select.add(new Option(c, c)));
    select.addEventListener("change", () => {
      const [kind, wanted] = [select.value.split(":")[0], select.value.slice(select.value.indexOf(":") + 1)];
      rows.forEach((r) => {
        const field = kind === "key" ? "key_id" : "project";
        r.classList.toggle("hidden", select.value !== "" && value(r, field) !== wanted);
      });
    });
    holder.append("Show only ", select);
  }

  timeChart("chart-cost", "cost_usd", true);
  timeChart("chart-tokens", "tokens", false);
  modelChart();
  if (document.body.dataset.live !== "1") recentFilter();
  window.tollkeeperCharts = charts;
})();
