// The uringd dashboard: time series of requests/s, errors and latency percentiles, and
// the latency spectrum, drawn with uPlot from the admin JSON. Without JavaScript the page
// is the server-rendered overview, refreshed by a <noscript> meta refresh.
// Only same-origin requests (the page's Content-Security-Policy allows nothing else).
(function () {
  "use strict";

  var $ = function (id) { return document.getElementById(id); };
  var live = $("live");
  if (!live || typeof uPlot === "undefined") return;

  // Live, the last minute is what a person tuning a server watches; the page's own
  // default window (since start) applies only when the address asks for nothing.
  if (!/[?&]window=/.test(location.search)) $("window").value = "60s";
  var state = {
    win: $("window").value,
    route: $("route").value,
    worker: $("worker").value,
    since: 0,
    now: 0,
    uptime: 0,
    points: [], // [t, requests, 4xx, 5xx, p50_us, p99_us, p999_us], oldest first
    spectrum: null,
    summary: null,
    // Bumped when the selection changes, so an answer for the old one is dropped.
    gen: 0,
  };
  var HISTORY = 300;
  var charts = {};

  function q(params) {
    var out = [];
    Object.keys(params).forEach(function (k) {
      if (params[k] !== "" && params[k] !== null && params[k] !== undefined) {
        out.push(encodeURIComponent(k) + "=" + encodeURIComponent(params[k]));
      }
    });
    return out.length ? "?" + out.join("&") : "";
  }

  function get(path, params, as) {
    return fetch(path + q(params), { cache: "no-store", credentials: "same-origin" }).then(
      function (r) {
        if (r.status === 401) throw new Error("unauthorized: this endpoint needs its bearer token");
        if (!r.ok) throw new Error(path + ": HTTP " + r.status);
        return as === "text" ? r.text() : r.json();
      }
    );
  }

  function status(msg, bad) {
    var s = $("status");
    s.textContent = msg;
    s.className = bad ? "bad" : "";
  }

  function ms(us) { return us === null || us === undefined ? null : us / 1000; }

  function fmtLatency(us) {
    if (us === null || us === undefined) return "–";
    if (us < 1000) return us + " µs";
    if (us < 1e6) return (us / 1e3).toFixed(2) + " ms";
    return (us / 1e6).toFixed(2) + " s";
  }

  function fmtInt(n) { return Math.round(n).toLocaleString("en-US"); }

  // Seconds shown in the time series for the chosen window.
  function span() {
    if (state.win === "10s") return 10;
    if (state.win === "60s") return 60;
    // Since start: as far back as the history goes.
    return Math.max(10, Math.min(HISTORY, state.uptime));
  }

  function width(el) { return Math.max(320, el.clientWidth || 900); }

  function timeAxis() {
    return { stroke: "#6b7280", grid: { stroke: "#eef0f3" }, ticks: { stroke: "#e5e7eb" } };
  }

  function valueAxis(label, fmt) {
    return {
      label: label,
      stroke: "#6b7280",
      grid: { stroke: "#eef0f3" },
      ticks: { stroke: "#e5e7eb" },
      size: 64,
      values: fmt ? function (u, vals) { return vals.map(fmt); } : undefined,
    };
  }

  function make(id, opts, data) {
    var el = $(id);
    opts.width = width(el);
    opts.height = 220;
    opts.legend = { live: true };
    opts.cursor = { drag: { x: false, y: false } };
    charts[id] = new uPlot(opts, data, el);
  }

  // Dense columns over the shown span: a second without traffic is 0 requests and no
  // latency (a gap), not a line drawn across it.
  function columns() {
    var n = span();
    var end = state.now; // the newest finished second is end - 1
    var start = end - n;
    var born = end - state.uptime; // no data before the server started: a gap, not zeros
    var by = {};
    state.points.forEach(function (p) { by[p[0]] = p; });
    var cols = [[], [], [], [], [], [], []];
    for (var t = start; t < end; t++) {
      var p = by[t];
      var zero = t < born ? null : 0;
      cols[0].push(t);
      cols[1].push(p ? p[1] : zero);
      cols[2].push(p ? p[2] : zero);
      cols[3].push(p ? p[3] : zero);
      cols[4].push(p ? ms(p[4]) : null);
      cols[5].push(p ? ms(p[5]) : null);
      cols[6].push(p ? ms(p[6]) : null);
    }
    return cols;
  }

  function drawSeries() {
    var c = columns();
    var rate = [c[0], c[1], c[2], c[3]];
    var lat = [c[0], c[4], c[5], c[6]];
    if (!charts["chart-rate"]) {
      make("chart-rate", {
        scales: { x: { time: true } },
        axes: [timeAxis(), valueAxis("per second")],
        series: [
          {},
          { label: "requests/s", stroke: "#2563eb", width: 2, fill: "rgba(37,99,235,.08)", points: { show: false } },
          { label: "4xx/s", stroke: "#ca8a04", width: 1.5, points: { show: false } },
          { label: "5xx/s", stroke: "#dc2626", width: 1.5, points: { show: false } },
        ],
      }, rate);
      make("chart-latency", {
        scales: { x: { time: true }, y: { distr: 3 } },
        axes: [timeAxis(), valueAxis("ms")],
        series: [
          {},
          { label: "p50", stroke: "#2563eb", width: 2, spanGaps: false },
          { label: "p99", stroke: "#ea580c", width: 2, spanGaps: false },
          { label: "p99.9", stroke: "#dc2626", width: 2, spanGaps: false },
        ],
      }, lat);
    } else {
      charts["chart-rate"].setData(rate);
      charts["chart-latency"].setData(lat);
    }
    // The newest finished second, in figures and in attributes a test can read.
    var last = state.points.length ? state.points[state.points.length - 1] : null;
    var total = c[1].reduce(function (a, b) { return a + b; }, 0);
    var now = $("now");
    now.dataset.t = last ? last[0] : 0;
    now.dataset.points = state.points.length;
    now.dataset.requests = total;
    var fresh = last && last[0] === state.now - 1;
    var figures = [
      ["requests/s", fresh ? fmtInt(last[1]) : "0"],
      ["5xx/s", fresh ? fmtInt(last[3]) : "0"],
      ["p50", fresh ? fmtLatency(last[4]) : "–"],
      ["p99", fresh ? fmtLatency(last[5]) : "–"],
      ["p99.9", fresh ? fmtLatency(last[6]) : "–"],
      ["requests in view", fmtInt(total)],
    ];
    now.textContent = "";
    figures.forEach(function (f) {
      var card = document.createElement("div");
      card.className = "card";
      var k = document.createElement("div");
      k.className = "k";
      k.textContent = f[0];
      var v = document.createElement("div");
      v.className = "v";
      v.textContent = f[1];
      card.appendChild(k);
      card.appendChild(v);
      now.appendChild(card);
    });
  }

  var TICKS = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"];

  function drawSpectrum() {
    var sp = state.spectrum || [];
    var xs = [], ys = [];
    sp.forEach(function (pt) {
      var p = pt[0] / 100;
      xs.push(p < 1 ? Math.min(5, Math.log10(1 / (1 - p))) : 5);
      ys.push(Math.max(0.001, pt[1] / 1000));
    });
    var data = [xs, ys];
    var s = state.summary;
    $("spectrum-note").textContent = s && s.count
      ? fmtInt(s.count) + " requests · p50 " + fmtLatency(s.p50) + " · p99 " + fmtLatency(s.p99) +
        " · p99.9 " + fmtLatency(s.p999) + " · max " + fmtLatency(s.max)
      : "no requests in this window";
    if (!charts["chart-spectrum"]) {
      make("chart-spectrum", {
        scales: { x: { time: false, range: [0, 5] }, y: { distr: 3 } },
        axes: [
          {
            stroke: "#6b7280",
            grid: { stroke: "#eef0f3" },
            splits: function () { return [0, 1, 2, 3, 4, 5]; },
            values: function (u, vals) { return vals.map(function (v) { return TICKS[Math.round(v)] || ""; }); },
          },
          valueAxis("ms"),
        ],
        series: [
          { label: "percentile", value: function (u, v) { return v === null ? "–" : (100 * (1 - Math.pow(10, -v))).toFixed(3) + "%"; } },
          { label: "latency", stroke: "#111827", width: 2, points: { show: false } },
        ],
      }, data);
    } else {
      charts["chart-spectrum"].setData(data);
    }
  }

  function pollSeries() {
    var gen = state.gen;
    get("/_uringd/series", { since: state.since, route: state.route, worker: state.worker })
      .then(function (j) {
        if (gen !== state.gen) return;
        state.now = j.now;
        state.uptime = j.uptime_s;
        j.points.forEach(function (p) { state.points.push(p); });
        if (j.points.length) state.since = j.points[j.points.length - 1][0];
        var oldest = j.now - HISTORY;
        state.points = state.points.filter(function (p) { return p[0] >= oldest; });
        drawSeries();
        status("live · " + new Date(j.now * 1000).toLocaleTimeString(), false);
      })
      .catch(function (e) { status(e.message, true); })
      .then(function () { setTimeout(pollSeries, 1000); });
  }

  function pollSpectrum() {
    var gen = state.gen;
    get("/_uringd/latency", { format: "json", window: state.win, route: state.route, worker: state.worker })
      .then(function (j) {
        if (gen !== state.gen) return;
        state.spectrum = j.spectrum;
        state.summary = j;
        drawSpectrum();
      })
      .catch(function (e) { status(e.message, true); })
      .then(function () { setTimeout(pollSpectrum, 2000); });
  }

  // The counters and tables below the charts: the server's own rendering, fetched again.
  function pollOverview() {
    get("/_uringd/", { window: state.win }, "text")
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("overview");
        if (fresh) $("overview").replaceWith(document.importNode(fresh, true));
        var head = doc.querySelector("header");
        if (head) document.querySelector("header").replaceWith(document.importNode(head, true));
      })
      .catch(function (e) { status(e.message, true); })
      .then(function () { setTimeout(pollOverview, 2000); });
  }

  function changed() {
    var route = $("route").value, worker = $("worker").value;
    var reset = route !== state.route || worker !== state.worker;
    state.win = $("window").value;
    state.route = route;
    state.worker = worker;
    state.gen++;
    if (reset) {
      state.points = [];
      state.since = 0;
    }
    drawSeries();
  }

  ["window", "route", "worker"].forEach(function (id) { $(id).addEventListener("change", changed); });
  window.addEventListener("resize", function () {
    Object.keys(charts).forEach(function (id) {
      charts[id].setSize({ width: width($(id)), height: 220 });
    });
  });

  live.hidden = false;
  document.body.classList.add("scripted");
  pollSeries();
  pollSpectrum();
  pollOverview();
})();
