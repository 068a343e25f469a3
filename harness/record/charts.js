// The charts of what monitoring sees, drawn with Plotly (bundled from the plotly package, no CDN).
// One definition for the drill's live board and a run's offline report.html.
"use strict";

const OUTAGE_CHART_GROUPS = [
  { id: "traffic", title: "Requests and errors (per s)", series: ["requests_per_s", "errors_per_s"] },
  { id: "latency", title: "Latency (ms)", series: ["latency_p50_ms", "latency_p99_ms"] },
  { id: "queues", title: "Queues (items)", series: ["queue_depth", "outbox_length", "jobs_pending"] },
  { id: "ages", title: "Age of the oldest waiting item (s)", series: ["outbox_age_s", "oldest_job_age_s"] },
  { id: "live", title: "Live websocket connections", series: ["live_connections"] },
];

class OutageCharts {
  constructor(root, labels) {
    this.root = root;
    this.labels = labels;
    this.shapes = [];
    this.annotations = [];
    this.divs = OUTAGE_CHART_GROUPS.map((group) => {
      const div = document.createElement("div");
      div.className = "chart";
      div.id = "chart-" + group.id;
      root.appendChild(div);
      const traces = group.series.map((key) => ({
        x: [], y: [], mode: "lines", name: (labels[key] || [key])[0], connectgaps: false,
      }));
      Plotly.newPlot(div, traces, {
        title: { text: group.title, font: { size: 14 } },
        height: 240, margin: { l: 50, r: 10, t: 35, b: 35 },
        xaxis: { title: { text: "t (s)" } }, legend: { orientation: "h" },
      }, { displayModeBar: false, responsive: true });
      return { div, group };
    });
  }

  add(points) {
    if (!points.length) return;
    for (const { div, group } of this.divs) {
      const xs = group.series.map(() => points.map((p) => p.t));
      const ys = group.series.map((key) => points.map((p) => (p[key] === undefined ? null : p[key])));
      Plotly.extendTraces(div, { x: xs, y: ys }, group.series.map((_, i) => i));
    }
  }

  markAlert(t, name) {
    this.shapes.push({ type: "line", x0: t, x1: t, yref: "paper", y0: 0, y1: 1, line: { color: "#c0392b", dash: "dot" } });
    this.annotations.push({
      x: t, yref: "paper", y: 1, text: name, showarrow: false, textangle: -90,
      xanchor: "right", yanchor: "top", font: { color: "#c0392b", size: 10 },
    });
    for (const { div } of this.divs) {
      Plotly.relayout(div, { shapes: this.shapes, annotations: this.annotations });
    }
  }
}
