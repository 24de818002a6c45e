// edgecnn live view: polls /api/status once a second and keeps one MJPEG <img> per source (no framework, no CDN).
"use strict";
const $ = (id) => document.getElementById(id);
const cards = new Map();

function text(tag, value, cls) {
  const el = document.createElement(tag);
  el.textContent = value;
  if (cls) el.className = cls;
  return el;
}

function fmt(x, digits) {
  return x === null || x === undefined || Number.isNaN(x) ? "–" : Number(x).toFixed(digits);
}

function card(src) {
  let c = cards.get(src.name);
  if (c) return c;
  const root = document.createElement("div");
  root.className = "source";
  root.dataset.source = src.name;
  const img = document.createElement("img");
  img.className = "stream";
  img.alt = "live stream of " + src.name;
  img.src = "/stream/" + encodeURIComponent(src.name);
  const info = document.createElement("div");
  info.className = "info";
  const name = text("span", src.name, "name");
  const label = text("span", "", "label");
  const score = text("span", "", "score");
  const fps = text("span", "", "fps dim");
  const latency = text("span", "", "latency dim");
  const health = text("span", "", "badge");
  info.append(name, label, score, fps, latency, health);
  root.append(img, info);
  $("sources").append(root);
  c = { root, img, label, score, fps, latency, health };
  cards.set(src.name, c);
  return c;
}

function render(s) {
  $("model-name").textContent = s.model.name;
  $("model-sha").textContent = s.model.sha256.slice(0, 12);
  $("model-version").textContent = s.model.version || "";
  $("health").textContent = s.ready ? "ready" : "not ready";
  $("health").className = "badge " + (s.ready ? "ok" : "bad");
  $("uptime").textContent = "up " + Math.round(s.uptime_s) + " s";
  $("no-sources").style.display = s.sources.length ? "none" : "";
  if (!s.sources.length) {
    $("no-sources").textContent = s.predict.enabled
      ? "No sources: this server answers POST /predict (edgecnn serve MODEL --source … adds a live stream)."
      : "No sources yet.";
  }
  for (const src of s.sources) {
    const c = card(src);
    c.label.textContent = src.label || "–";
    c.score.textContent = fmt(src.score, 3);
    c.fps.textContent = fmt(src.fps, 1) + " fps";
    c.latency.textContent = fmt(src.latency_ms, 1) + " ms";
    const up = !src.health || src.health.connected;
    c.health.textContent = up ? "up" : "down";
    c.health.className = "badge " + (up ? "ok" : "bad");
  }
  const problems = $("problems");
  problems.replaceChildren(...s.problems.map((p) => text("li", p.check + " " + p.name + ": " + p.problem)));
  $("health-ok").textContent = s.problems.length ? "" : "Model loaded, every source delivering, every output reachable.";
  $("decisions").replaceChildren(...s.decisions.slice(0, 20).map((d) => {
    const tr = document.createElement("tr");
    tr.className = "decision";
    tr.append(text("td", d.seq), text("td", d.source + (d.region && d.region !== "frame" ? "/" + d.region : "")),
      text("td", d.verdict, d.reject ? "reject verdict" : "verdict"), text("td", fmt(d.score, 3)),
      text("td", fmt(d.latency_ms, 1) + " ms"));
    return tr;
  }));
  $("outputs").replaceChildren(...(s.outputs.length ? s.outputs.map((o) => {
    const tr = document.createElement("tr");
    tr.append(text("td", o.name), text("td", o.connected ? "up" : "down", o.connected ? "" : "reject"),
      text("td", "sent " + o.sent), text("td", "errors " + o.errors), text("td", "queue " + o.queue_depth));
    return tr;
  }) : [text("tr", "none")]));
  const p = s.predict;
  $("predict").textContent = p.enabled
    ? `${p.requests} requests, ${p.images} images in ${p.batches} batches (mean ${p.mean_batch}, max ${p.max_batch}), queue ${p.queue_depth}`
    : "not served";
}

async function poll() {
  try {
    const r = await fetch("/api/status", { cache: "no-store", credentials: "same-origin" });
    if (r.status === 401) { location.href = "/login"; return; }
    render(await r.json());
  } catch (e) {
    $("health").textContent = "unreachable";
    $("health").className = "badge bad";
  }
}

poll();
setInterval(poll, 1000);
