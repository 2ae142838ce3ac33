// veriswap ui, the Detect page: practice material -> dataset -> detector -> evaluation, each a job (/api/jobs);
// the plots are drawn here (lineChart, app.js) from what the library wrote: the detector's loss.csv and
// metrics.json (/api/detect/detector) and the evaluation's result. Each plot is an <img> (an SVG image): it
// can be saved like any picture.
"use strict";
const D = {seen: {}, detector: null, detKey: ""};
const SMALL = {w: 400, h: 230, legend: 86};

// an SVG chart as an image the browser decodes (naturalWidth > 0 once it is drawn)
function plotImg(svg, alt, caption) {
  if (!svg.startsWith("<svg")) return svg;              // "no data yet" hint
  const [, w, h] = svg.match(/viewBox="0 0 (\d+) (\d+)"/) || [0, 520, 200];
  const sized = svg.replace("<svg ", `<svg width="${w}" height="${h}" font-family="sans-serif" style="background:#fbfcfd" `);
  return `<figure><img class="plot-img" alt="${esc(alt)}" src="data:image/svg+xml;charset=utf-8,${encodeURIComponent(sized)}">` +
    `${caption ? `<figcaption>${esc(caption)}</figcaption>` : ""}</figure>`;
}
const latest = kind => S.jobs.find(j => j.kind === kind);
const fmt3 = x => x == null ? "-" : (+x).toFixed(3);

async function refreshDetect() {
  const v = await api("/api/detect/videos");
  fillSelect($("#ds-real"), v.real.map(f => ({value: f.path, label: f.path})), true);
  fillSelect($("#ds-fake"), v.fake.map(f => ({value: f.path, label: f.path})), true);
  const ds = (await listFiles("detect/datasets", "any")).filter(f => f.name === "dataset.json").map(f => f.path.replace(/\/dataset\.json$/, ""));
  fillSelect($("#dt-ds"), ds.map(d => ({value: d, label: d})), true); fillSelect($("#ev-ds"), ds.map(d => ({value: d, label: d})), true);
  const dets = await detectorFolders();
  fillSelect($("#ev-det"), dets.map(d => ({value: d, label: d})), true);
  const w = (await listFiles("", "any")).filter(f => /\.(safetensors|pth|bin)$/i.test(f.name) && !f.path.startsWith("swaps/") && !f.path.startsWith("detect/"));
  fillSelect($("#dt-weights"), w.map(f => ({value: f.path, label: f.path})), true, "none: train from scratch");
  renderDetectJobs();
}
const selectValues = (sel, values) => $$("option", sel).forEach(o => { o.selected = values.includes(o.value); });

// a job that finished while the page was open: offer its output to the next step
async function onDetectJobDone(j) {
  await refreshDetect();
  if (j.kind === "detect_samples" && j.result) {
    selectValues($("#ds-real"), j.result.real); selectValues($("#ds-fake"), j.result.swaps);
    $("#ds-name").value = "practice";
  } else if (j.kind === "detect_dataset") {
    $("#dt-ds").value = j.params.out; $("#ev-ds").value = j.params.out;
  } else if (j.kind === "detect_train") {
    $("#ev-det").value = j.params.out; $("#ev-ds").value = j.params.dataset;
  }
}

function renderDetectJobs() {
  const pr = latest("detect_samples"), ds = latest("detect_dataset"), dt = latest("detect_train"), ev = latest("detect_eval");
  $("#job-pr").innerHTML = jobLine(pr); $("#job-ds").innerHTML = jobLine(ds); $("#job-dt").innerHTML = jobLine(dt); $("#job-ev").innerHTML = jobLine(ev);
  for (const j of [pr, ds, dt, ev]) {
    if (!j) continue;
    const before = D.seen[j.id];
    D.seen[j.id] = j.state;
    if (before && before !== "done" && j.state === "done") onDetectJobDone(j).catch(e => toast(e.message, true));
  }
  renderDatasetCounts(ds);
  if (dt) loadDetector(dt.params.out, dt.active);
  renderEval(ev);
}

function renderDatasetCounts(ds) {
  const c = ds && ds.state === "done" && ds.result && ds.result.counts;
  if (!c) { $("#ds-out").innerHTML = ""; return; }
  const rows = ["train", "val", "test"].map(k => `<tr><td>${k}</td><td>${(c[k] || {}).videos || 0}</td><td>${(c[k] || {}).real || 0}</td><td>${(c[k] || {}).fake || 0}</td></tr>`).join("");
  $("#ds-out").innerHTML = `<table class="metrics"><tr><th>split</th><th>videos</th><th>real faces</th><th>fake faces</th></tr>${rows}</table>` +
    (ds.result.warnings || []).map(w => `<p class="hint">${esc(w)}</p>`).join("");
}

// the detector's curves, from its folder (written after every epoch): live while it trains
async function loadDetector(path, active) {
  const now = Date.now();
  if (D.detector === path && (active ? now - (D.loadedAt || 0) < 2000 : D.final === path)) return;
  D.detector = path; D.loadedAt = now; D.final = active ? null : path;
  let v;
  try { v = await api(`/api/detect/detector?path=${encodeURIComponent(path)}`); } catch (e) { return; }   // not written yet
  const key = JSON.stringify([v.steps.length, v.history.length, v.steps.slice(-1)]);
  if (key === D.detKey) return;
  D.detKey = key;
  const h = v.history;
  const loss = plotImg(lineChart([{name: "training loss", color: "#2f6fdb", points: v.steps.map(r => [r[0], r[1]])}],
    {xlabel: "step", empty: "The loss plot appears after the first epoch.", ...SMALL}), "training loss per step", `${v.arch || ""} @ ${v.input_size || "?"} px: training loss per step`);
  const val = h.length ? plotImg(lineChart([
    {name: "val loss", color: "#d9822b", dots: h.length < 3, points: h.filter(r => r.val_loss != null).map(r => [r.epoch + 1, r.val_loss])},
    {name: "val AUC", color: "#1f7a3f", dots: h.length < 3, points: h.filter(r => r.val_auc != null).map(r => [r.epoch + 1, r.val_auc])}],
    {xlabel: "epoch", y0: 0, ...SMALL}), "validation loss and AUC per epoch",
    `validation after each epoch (best: epoch ${(v.best_epoch ?? 0) + 1}, AUC ${fmt3((h.find(r => r.epoch === v.best_epoch) || {}).val_auc)})`) : "";
  $("#dt-plot").innerHTML = loss + val;
}

function renderEval(ev) {
  const el = $("#ev-out");
  if (!(ev && ev.result && ev.result.frame)) { el.innerHTML = ""; el.dataset.id = ""; return; }
  if (el.dataset.id === ev.id) return;
  el.dataset.id = ev.id;
  const r = ev.result;
  const rows = [["AUC", "auc"], ["EER", "eer"], ["AP", "ap"], ["accuracy", "acc_threshold"]]
    .map(([n, k]) => `<tr><td>${n}</td><td class="m-frame-${k}">${fmt3(r.frame[k])}</td><td class="m-video-${k}">${fmt3(r.video[k])}</td></tr>`).join("");
  const roc = r.roc_video ? plotImg(lineChart([{name: "video ROC", color: "#2f6fdb", points: r.roc_video.fpr.map((x, i) => [x, r.roc_video.tpr[i]])},
    {name: "chance", color: "#bbb", points: [[0, 0], [1, 1]]}], {xlabel: "false positive rate (y: true positive rate)", y0: 0, y1: 1, ...SMALL, h: 300}),
    "video ROC curve", `ROC over ${r.videos} videos: AUC ${fmt3(r.video.auc)}`) : `<p class="hint">No ROC: the ${esc(r.split)} split needs real and fake videos.</p>`;
  const pv = Object.entries(r.per_video || {}).sort((a, b) => a[1].label - b[1].label || a[0].localeCompare(b[0]));
  const pts = lab => pv.map(([, v], i) => [i + 1, v.score, v.label]).filter(p => p[2] === lab).map(p => [p[0], p[1]]);
  const sc = plotImg(lineChart([{name: "real", color: "#1f7a3f", dots: true, points: pts(0)},
    {name: "fake", color: "#b3261e", dots: true, points: pts(1)},
    {name: "threshold", color: "#999", points: [[1, r.threshold], [Math.max(pv.length, 2), r.threshold]]}], {xlabel: "video (real first, then fake)", y0: 0, y1: 1, ...SMALL}),
    "per-video fake scores", "each video's mean fake score, and the threshold");
  el.innerHTML = `<table class="metrics"><tr><th></th><th>frame</th><th>video</th></tr>${rows}</table>
    <p class="small">threshold ${fmt3(r.threshold)}, ${r.videos} videos (${esc(r.split)} split), ${r.frame.n} faces</p>${roc}${sc}
    ${(r.warnings || []).map(w => `<p class="err small">${esc(w)}</p>`).join("")}`;
}

$("#btn-practice").addEventListener("click", guard(async () => {
  await api("/api/jobs", {kind: "detect_samples", title: "practice videos", params: {folder: "detect/practice",
    people: +$("#pr-people").value, frames: +$("#pr-frames").value}});
}));
$("#btn-ds").addEventListener("click", guard(async () => {
  const name = $("#ds-name").value.trim();
  await api("/api/jobs", {kind: "detect_dataset", title: `dataset ${name}`, params: {real: $$("#ds-real option:checked").map(o => o.value),
    fake: $$("#ds-fake option:checked").map(o => o.value), out: `detect/datasets/${name}`, frames: +$("#ds-frames").value,
    split: $("#ds-split").value.trim() || null}});
}));
$("#btn-dt").addEventListener("click", guard(async () => {
  const name = $("#dt-name").value.trim();
  await api("/api/jobs", {kind: "detect_train", title: `train detector ${name}`, params: {dataset: $("#dt-ds").value, out: `detect/detectors/${name}`,
    arch: $("#dt-arch").value, epochs: +$("#dt-epochs").value, batch_size: +$("#dt-batch").value || 32, sbi: $("#dt-sbi").checked, input_size: +$("#dt-size").value || null, weights: $("#dt-weights").value || null}});
}));
$("#btn-ev").addEventListener("click", guard(async () => {
  await api("/api/jobs", {kind: "detect_eval", title: `evaluate ${base($("#ev-det").value)}`, params: {dataset: $("#ev-ds").value, detector: $("#ev-det").value, split: $("#ev-split").value}});
}));
