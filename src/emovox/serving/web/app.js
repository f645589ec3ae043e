// emovox web page: a clip (file or microphone recording) → /v1/predict (and /v1/timeline for long
// ones); live mode streams the microphone over WS /v1/stream. Plain JS, no build step, no CDN.
"use strict";

const LONG_CLIP = 15; // seconds: longer clips also get a timeline
const PALETTE = ["#3558d6", "#d63c35", "#2f9e55", "#d68f1f", "#8a3fd1", "#1a9aa5", "#c2459a", "#6b7280", "#7a5c2e", "#4c7a2e"];
const SVG_NS = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

let labels = [];
const colorOf = (label) => PALETTE[Math.max(0, labels.indexOf(label)) % PALETTE.length];

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function setStatus(id, text, isError) {
  $(id).textContent = text;
  $(id).classList.toggle("error", Boolean(isError));
}

function legend(id, names) {
  $(id).replaceChildren(...names.map((name) => {
    const item = document.createElement("span");
    item.style.setProperty("--swatch", colorOf(name));
    item.textContent = name;
    return item;
  }));
}

async function loadModel() {
  try {
    const info = (await (await fetch("/v1/models")).json()).models[0];
    labels = info.labels;
    $("model-info").textContent = `model ${info.id} · ${info.encoder || "?"} · labels: ${labels.join(", ")}`;
  } catch (e) {
    $("model-info").textContent = "cannot reach the server";
  }
}

// ---- a clip ---------------------------------------------------------------------------------

function drawBars(scores) {
  const bars = $("bars");
  const entries = Object.entries(scores).sort((a, b) => b[1] - a[1]);
  const row = 26, left = 90, width = 600;
  bars.setAttribute("viewBox", `0 0 ${width + left + 60} ${entries.length * row + 4}`);
  bars.replaceChildren();
  entries.forEach(([label, score], i) => {
    const y = i * row + 2;
    bars.append(svg("text", { x: left - 8, y: y + 16, "text-anchor": "end" }, label));
    bars.append(svg("rect", { x: left, y, width: Math.max(1, score * width), height: row - 6, fill: colorOf(label),
                              "data-label": label, "data-score": score.toFixed(4) }));
    bars.append(svg("text", { x: left + score * width + 6, y: y + 16 }, `${(100 * score).toFixed(1)} %`));
  });
}

function showPrediction(result) {
  $("result").hidden = false;
  $("result-label").textContent = result.label;
  $("result-label").dataset.label = result.label;
  $("result-duration").textContent = `${result.duration.toFixed(1)} s`;
  drawBars(result.scores);
}

function drawTimeline(result) {
  const box = $("timeline-box"), chart = $("timeline");
  box.hidden = false;
  // a conversation (?parties=): one lane per party, named on the left; overlapping speech outlined
  const lanes = result.parties || [null], left = result.parties ? 90 : 0;
  const top = 10, bandHeight = 22, plotTop = top + lanes.length * (bandHeight + 4) + 8, height = plotTop + 106;
  const width = 900, plotHeight = height - plotTop - 22;
  const x = (t) => left + (t / Math.max(result.duration, 1e-3)) * (width - left);
  chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
  chart.replaceChildren(svg("line", { x1: 0, x2: width, y1: plotTop + plotHeight, y2: plotTop + plotHeight, class: "axis" }));
  lanes.forEach((party, row) => {
    if (party === null) return;
    const lane = svg("g", { class: "lane", "data-party": party });
    lane.append(svg("text", { x: 0, y: top + row * (bandHeight + 4) + 16 }, party));
    chart.append(lane);
  });
  for (const seg of result.segments) {
    const row = Math.max(0, lanes.indexOf(seg.party === undefined ? null : seg.party));
    const rect = svg("rect", { x: x(seg.start), y: top + row * (bandHeight + 4), width: Math.max(1, x(seg.end) - x(seg.start)),
                               height: bandHeight, fill: colorOf(seg.label), class: "segment", "data-label": seg.label });
    if (seg.overlap) rect.setAttribute("stroke", "#111");
    if (seg.party !== undefined) rect.dataset.party = seg.party;
    chart.append(rect);
  }
  // one line per label and run of adjacent windows: silence between segments stays a gap
  const runs = [];
  for (const seg of result.segments) {
    const last = runs[runs.length - 1];
    if (last && Math.abs(last[last.length - 1].end - seg.start) < 0.05) last.push(seg); else runs.push([seg]);
  }
  for (const label of result.labels) {
    for (const run of runs) {
      const points = run.flatMap((s) => [[x(s.start), s.scores[label]], [x(s.end), s.scores[label]]]);
      chart.append(svg("polyline", { points: points.map(([px, s]) => `${px},${plotTop + (1 - s) * plotHeight}`).join(" "),
                                     fill: "none", stroke: colorOf(label), "stroke-width": 2 }));
    }
  }
  for (let t = 0; t <= result.duration; t += Math.max(1, Math.ceil(result.duration / 10))) {
    chart.append(svg("text", { x: Math.min(x(t), width - 20), y: height - 4 }, `${t}s`));
  }
  const shares = Object.entries(result.summary.shares).filter(([, v]) => v > 0)
    .map(([k, v]) => `${k} ${(100 * v).toFixed(0)} %`).join(" · ");
  const perParty = Object.entries(result.summary.parties || {})
    .map(([party, own]) => `${party}: mostly ${own.dominant || "silent"}`).join(" · ");
  $("timeline-summary").textContent = `${result.segments.length} speech segments, ${result.summary.speech.toFixed(1)} s `
    + `of speech in ${result.duration.toFixed(1)} s${shares ? ": " + shares : ""}${perParty ? " — " + perParty : ""}`;
  legend("timeline-legend", result.labels);
}

async function post(path, blob, name) {
  const form = new FormData();
  form.append("file", blob, name);
  const response = await fetch(path, { method: "POST", body: form });
  let body = null;
  try { body = await response.json(); } catch (e) { /* not JSON */ }
  return { ok: response.ok, status: response.status, body };
}

async function analyse(blob, name) {
  $("result").hidden = true;
  $("timeline-box").hidden = true;
  setStatus("status", `Analysing ${name}…`);
  try {
    const clip = await post("/v1/predict", blob, name);
    const tooLong = !clip.ok && clip.body && clip.body.error && clip.body.error.code === "audio_too_long";
    if (!clip.ok && !tooLong) {
      setStatus("status", `${name}: ${clip.body && clip.body.error ? clip.body.error.message : "error " + clip.status}`, true);
      return;
    }
    if (clip.ok) showPrediction(clip.body);
    const parties = $("parties").value;
    if (tooLong || clip.body.duration > LONG_CLIP || parties) {
      setStatus("status", `${name}: finding the speech segments…`);
      const query = parties ? `?parties=${encodeURIComponent(parties)}` : "";
      const tl = await post(`/v1/timeline${query}`, blob, name);
      if (!tl.ok) {
        setStatus("status", `${name}: ${tl.body && tl.body.error ? tl.body.error.message : "error " + tl.status}`, true);
        return;
      }
      drawTimeline(tl.body);
      if (tooLong) {
        $("result").hidden = false;
        $("result-label").textContent = tl.body.summary.dominant || "no speech";
        $("result-label").dataset.label = tl.body.summary.dominant || "";
        $("result-duration").textContent = `${tl.body.duration.toFixed(1)} s (most of the speech)`;
        drawBars(tl.body.summary.shares);
      }
    }
    setStatus("status", `${name}: done.`);
  } catch (e) {
    setStatus("status", `${name}: ${e}`, true);
  }
}

// ---- the microphone -------------------------------------------------------------------------

// Opens the microphone and calls onSamples(Float32Array) with every block; returns {rate, stop}.
async function openMicrophone(onSamples, sampleRate) {
  const media = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: false,
                                                                      noiseSuppression: false, autoGainControl: false } });
  let context;
  try { context = new AudioContext(sampleRate ? { sampleRate } : {}); } catch (e) { context = new AudioContext(); }
  await context.audioWorklet.addModule("/static/pcm-worklet.js");
  const source = context.createMediaStreamSource(media);
  const node = new AudioWorkletNode(context, "pcm-capture");
  const mute = context.createGain();
  mute.gain.value = 0;
  node.port.onmessage = (event) => onSamples(event.data);
  source.connect(node).connect(mute).connect(context.destination);
  await context.resume();
  return {
    rate: context.sampleRate,
    stop: async () => { media.getTracks().forEach((t) => t.stop()); node.port.onmessage = null; await context.close(); },
  };
}

function toInt16(samples) {
  const out = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = Math.max(-32768, Math.min(32767, Math.round(samples[i] * 32767)));
  return out;
}

function wavBlob(chunks, rate) {
  const length = chunks.reduce((n, c) => n + c.length, 0);
  const view = new DataView(new ArrayBuffer(44 + 2 * length));
  const text = (offset, s) => [...s].forEach((ch, i) => view.setUint8(offset + i, ch.charCodeAt(0)));
  text(0, "RIFF"); view.setUint32(4, 36 + 2 * length, true); text(8, "WAVE"); text(12, "fmt ");
  view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, rate, true); view.setUint32(28, 2 * rate, true); view.setUint16(32, 2, true);
  view.setUint16(34, 16, true); text(36, "data"); view.setUint32(40, 2 * length, true);
  let offset = 44;
  for (const chunk of chunks) {
    for (const v of toInt16(chunk)) { view.setInt16(offset, v, true); offset += 2; }
  }
  return new Blob([view], { type: "audio/wav" });
}

let recording = null;
async function toggleRecord() {
  const button = $("record");
  if (recording) {
    const { mic, chunks } = recording;
    recording = null;
    button.textContent = "● Record";
    button.classList.remove("active");
    await mic.stop();
    await analyse(wavBlob(chunks, mic.rate), "recording.wav");
    return;
  }
  try {
    const chunks = [];
    const mic = await openMicrophone((block) => chunks.push(block));
    recording = { mic, chunks };
    button.textContent = "■ Stop and analyse";
    button.classList.add("active");
    setStatus("status", "Recording… press stop when done.");
  } catch (e) {
    setStatus("status", `cannot open the microphone: ${e}`, true);
  }
}

// ---- live -----------------------------------------------------------------------------------

const live = { socket: null, mic: null, updates: [], count: 0, pending: [], pendingLength: 0 };
const LIVE_SPAN = 30; // seconds shown in the live chart

function drawLive() {
  const chart = $("live-chart");
  const width = 900, height = 170, bottom = height - 18;
  const last = live.updates.length ? live.updates[live.updates.length - 1].time : 0;
  const start = Math.max(0, last - LIVE_SPAN);
  const x = (t) => ((t - start) / LIVE_SPAN) * width;
  const y = (s) => 6 + (1 - s) * (bottom - 12);
  chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
  chart.replaceChildren(svg("line", { x1: 0, x2: width, y1: bottom, y2: bottom, class: "axis" }));
  const shown = live.updates.filter((u) => u.time >= start);
  for (const label of labels) {
    let run = [];
    const flush = () => {
      if (run.length > 1) chart.append(svg("polyline", { points: run.join(" "), fill: "none", stroke: colorOf(label), "stroke-width": 2 }));
      run = [];
    };
    for (const u of shown) {
      if (u.scores && label in u.scores) run.push(`${x(u.time)},${y(u.scores[label])}`); else flush();
    }
    flush();
  }
  for (let t = Math.ceil(start / 5) * 5; t <= start + LIVE_SPAN; t += 5) {
    chart.append(svg("text", { x: Math.min(x(t), width - 24), y: height - 3 }, `${t}s`));
  }
}

function onLiveMessage(event) {
  const message = JSON.parse(event.data);
  if (message.type === "ready") {
    setStatus("live-status", `Streaming at ${message.sample_rate} Hz; window ${message.window} s.`);
  } else if (message.type === "update") {
    live.updates.push(message);
    if (live.updates.length > 400) live.updates.shift();
    live.count += 1;
    $("live-count").dataset.count = live.count;
    $("live-count").textContent = `${live.count} updates`;
    $("live-label").textContent = message.label || "(silence)";
    $("live-label").dataset.label = message.label || "";
    drawLive();
  } else if (message.type === "segment") {
    const item = document.createElement("li");
    item.textContent = `${message.start.toFixed(1)}–${message.end.toFixed(1)} s: ${message.label}`;
    $("live-segments").prepend(item);
  } else if (message.type === "error") {
    setStatus("live-status", `server: ${message.message}`, true);
  }
}

async function startLive() {
  const button = $("live-toggle");
  live.updates = []; live.count = 0; live.pending = []; live.pendingLength = 0;
  $("live-segments").replaceChildren();
  try {
    live.mic = await openMicrophone((block) => {
      live.pending.push(toInt16(block));
      live.pendingLength += block.length;
      if (live.pendingLength >= live.mic.rate / 10 && live.socket && live.socket.readyState === WebSocket.OPEN) {
        const out = new Int16Array(live.pendingLength);
        let offset = 0;
        for (const part of live.pending) { out.set(part, offset); offset += part.length; }
        live.pending = []; live.pendingLength = 0;
        live.socket.send(out.buffer);
      }
    }, 16000);
  } catch (e) {
    setStatus("live-status", `cannot open the microphone: ${e}`, true);
    return;
  }
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  live.socket = new WebSocket(`${scheme}://${location.host}/v1/stream`);
  live.socket.onopen = () => live.socket.send(JSON.stringify({ type: "start", sample_rate: live.mic.rate, format: "pcm_s16le" }));
  live.socket.onmessage = onLiveMessage;
  live.socket.onclose = (event) => { if (live.mic) stopLive(event.code === 1000 ? null : `closed (${event.code})`); };
  button.textContent = "■ Stop live";
  button.classList.add("active");
}

async function stopLive(reason) {
  const button = $("live-toggle");
  button.textContent = "▶ Start live";
  button.classList.remove("active");
  const mic = live.mic;
  live.mic = null;
  if (mic) await mic.stop();
  if (live.socket && live.socket.readyState === WebSocket.OPEN) live.socket.send(JSON.stringify({ type: "stop" }));
  if (reason) setStatus("live-status", `Stopped: ${reason}`, true);
  else setStatus("live-status", "Stopped.");
}

// ---- wiring ---------------------------------------------------------------------------------

$("file").addEventListener("change", (event) => {
  const file = event.target.files[0];
  if (file) analyse(file, file.name);
});
$("record").addEventListener("click", toggleRecord);
$("live-toggle").addEventListener("click", () => (live.mic ? stopLive() : startLive()));
loadModel().then(() => { legend("live-legend", labels); drawLive(); });
