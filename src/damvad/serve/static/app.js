// damvad monitor page: polls the REST API once a second and draws tiles, timelines and events.
// Plain JS, no library, nothing fetched from elsewhere.
"use strict";

const S = { since: 0, offset: 0, windowSec: 300, scores: {}, cameras: [], tiles: {}, frames: null, timer: null };
const $ = (sel, root = document) => root.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k.startsWith("data-")) e.setAttribute(k, v); else e[k] = v;
  }
  for (const c of children) e.append(c);
  return e;
}

async function api(path, options = {}) {
  const r = await fetch(path, { credentials: "same-origin", ...options });
  if (r.status === 401) { $("#login").hidden = false; throw new Error("token needed"); }
  if (!r.ok) throw new Error(`${path}: ${r.status}`);
  return r.json();
}

const fmtTime = (ts) => new Date(ts * 1000).toLocaleTimeString([], { hour12: false });
const fmtDate = (ts) => new Date(ts * 1000).toLocaleString([], { hour12: false });
const fmtDur = (s) => (s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`);
const serverNow = () => Date.now() / 1000 + S.offset;

// ------------------------------------------------------------------ camera tiles

function tile(cam) {
  const t = el("article", { class: "tile", "data-camera": cam.name },
    el("header", {}, el("span", { class: "name", textContent: cam.name }), el("span", { class: "state" })),
    el("img", { class: "thumb", alt: `last frame of ${cam.name}` }),
    el("div", { class: "score" }, el("span", { class: "value", textContent: "-" }), el("span", { class: "thr" })),
    el("div", { class: "error-text" }),
    el("canvas", { class: "timeline", "data-points": "0" }));
  $("#cameras").append(t);
  return t;
}

function renderCameras(cameras) {
  S.cameras = cameras;
  for (const cam of cameras) {
    const t = S.tiles[cam.name] || (S.tiles[cam.name] = tile(cam));
    const state = cam.alert ? "alert" : cam.state;
    const badge = $(".state", t);
    badge.textContent = state;
    badge.className = `state ${state}`;
    t.classList.toggle("alert", cam.alert);
    const value = $(".value", t);
    value.textContent = cam.score == null ? "-" : cam.score.toFixed(3);
    value.classList.toggle("above", cam.score != null && cam.score >= cam.threshold);
    $(".thr", t).textContent = `threshold ${cam.threshold.toFixed(3)} · ${cam.frames} frames`;
    $(".error-text", t).textContent = cam.error || "";
    if (cam.frames > 0) $(".thumb", t).src = `${cam.thumbnail}?f=${cam.frames}`;
  }
}

// ------------------------------------------------------------------ timelines (canvas)

function drawTimeline(cam) {
  const t = S.tiles[cam.name];
  if (!t) return;
  const canvas = $("canvas", t);
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== w * dpr || canvas.height !== h * dpr) { canvas.width = w * dpr; canvas.height = h * dpr; }
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const left = 30, right = w - 6, top = 6, bottom = h - 18;
  const now = serverNow(), t0 = now - S.windowSec;
  const x = (ts) => left + ((ts - t0) / S.windowSec) * (right - left);
  const y = (v) => bottom - Math.max(0, Math.min(1, v)) * (bottom - top);
  const points = (S.scores[cam.name] || []).filter((p) => p[0] >= t0 - 10);
  canvas.dataset.points = String(points.length);
  // alert spans: a clip's alert shown from when it was scored until the next clip (as its score's step)
  g.fillStyle = "rgba(217, 45, 32, 0.15)";
  for (let i = 0; i < points.length; i++) {
    if (!points[i][2]) continue;
    const from = Math.max(left, x(points[i][0]));
    const to = Math.min(right, x(i + 1 < points.length ? points[i + 1][0] : now));
    g.fillRect(from, top, Math.max(2, to - from), bottom - top);
  }
  // axes and grid
  g.strokeStyle = "#e5e7eb"; g.lineWidth = 1; g.fillStyle = "#68707c"; g.font = "10px system-ui, sans-serif";
  for (const v of [0, 0.5, 1]) {
    g.beginPath(); g.moveTo(left, y(v)); g.lineTo(right, y(v)); g.stroke();
    g.fillText(v.toFixed(1), 4, y(v) + 3);
  }
  const step = S.windowSec / 5;
  for (let k = 0; k <= 5; k++) {
    const ts = t0 + k * step;
    const label = k === 5 ? "now" : `-${Math.round((now - ts) / (S.windowSec >= 600 ? 60 : 1))}${S.windowSec >= 600 ? " min" : " s"}`;
    g.fillText(label, Math.min(x(ts) - 8, right - 22), h - 4);
  }
  // threshold
  g.strokeStyle = "#d92d20"; g.setLineDash([5, 4]); g.lineWidth = 1.5;
  g.beginPath(); g.moveTo(left, y(cam.threshold)); g.lineTo(right, y(cam.threshold)); g.stroke();
  g.setLineDash([]);
  // scores: a step line, each clip's score held until the next
  g.strokeStyle = "#2563eb"; g.lineWidth = 2; g.beginPath();
  points.forEach((p, i) => {
    const px = Math.max(left, x(p[0])), py = y(p[1]);
    if (i === 0) g.moveTo(px, py); else { g.lineTo(px, y(points[i - 1][1])); g.lineTo(px, py); }
  });
  if (points.length) g.lineTo(Math.min(right, x(now)), y(points[points.length - 1][1]));
  g.stroke();
}

async function refreshScores() {
  const d = await api(`/api/scores?since=${S.since}`);
  S.offset = d.now - Date.now() / 1000;
  S.since = d.now;
  for (const [name, pts] of Object.entries(d.cameras)) {
    const list = (S.scores[name] = (S.scores[name] || []).concat(pts));
    while (list.length && list[0][0] < d.now - 3600) list.shift();
  }
}

// ------------------------------------------------------------------ events

function eventRow(e) {
  const open = e.state === "open";
  const end = e.end_ts ? fmtTime(e.end_ts) : "open";
  const duration = (e.end_ts || serverNow()) - e.start_ts;
  const thumb = e.thumbnail ? el("img", { src: e.thumbnail, alt: "event thumbnail", title: "play the event's frames" }) : "";
  if (thumb) thumb.addEventListener("click", () => openViewer(e));
  const ack = e.acknowledged_ts ? el("span", { class: "muted", textContent: "acknowledged" })
    : el("button", { type: "button", textContent: "acknowledge" });
  if (!e.acknowledged_ts) ack.addEventListener("click", () => acknowledge(e.id));
  const cls = [open ? "open" : "", e.acknowledged_ts ? "acknowledged" : ""].join(" ").trim();
  return el("tr", { class: cls, "data-event-id": String(e.id), "data-camera": e.camera },
    el("td", {}, thumb), el("td", { textContent: e.camera }), el("td", { textContent: fmtDate(e.start_ts) }),
    el("td", { textContent: end }), el("td", { textContent: fmtDur(duration) }),
    el("td", { textContent: e.peak_score.toFixed(3) }), el("td", { textContent: e.state }), el("td", {}, ack));
}

async function refreshEvents() {
  const events = await api("/api/events?limit=100");
  $("#events tbody").replaceChildren(...events.map(eventRow));
  $("#no-events").hidden = events.length > 0;
  const open = events.filter((e) => e.state === "open").length;
  $("#open-count").textContent = open ? `${open} open` : "";
}

async function acknowledge(id) {
  await api(`/api/events/${id}/ack`, { method: "POST", headers: { "X-Requested-With": "damvad" } });
  await refreshEvents();
}

function openViewer(e) {
  const frames = e.frames.length ? e.frames : [e.thumbnail];
  let i = 0;
  $("#viewer-title").textContent = `${e.camera} · event ${e.id} · peak ${e.peak_score.toFixed(3)}`;
  $("#viewer-info").textContent = `${fmtDate(e.start_ts)} · ${frames.length} frame(s), 4 per second`;
  $("#viewer").hidden = false;
  clearInterval(S.frames);
  const show = () => { $("#viewer-img").src = frames[i]; i = (i + 1) % frames.length; };
  show();
  S.frames = setInterval(show, 250);
}

function closeViewer() { clearInterval(S.frames); $("#viewer").hidden = true; }

// ------------------------------------------------------------------ loop

async function tick() {
  try {
    const [cameras, health] = await Promise.all([api("/api/cameras"), api("/api/health")]);
    await refreshScores();
    renderCameras(cameras);
    cameras.forEach(drawTimeline);
    $("#health").textContent = `${health.cameras_running}/${health.cameras} cameras running · ` +
      `${health.alerts_pending} alert(s) queued · up ${fmtDur(health.uptime_s)}`;
    await refreshEvents();
  } catch (err) {
    $("#health").textContent = `offline: ${err.message}`;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#window").addEventListener("change", (ev) => { S.windowSec = Number(ev.target.value); S.cameras.forEach(drawTimeline); });
  $("#viewer-close").addEventListener("click", closeViewer);
  tick();
  S.timer = setInterval(tick, 1000);
});
