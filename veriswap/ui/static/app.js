// veriswap ui: plain JS, no framework, nothing loaded from the network. Every action is a call to the
// server's /api (which starts a library job); progress arrives as server-sent events (/api/events).
"use strict";
const TOKEN = document.querySelector('meta[name="veriswap-token"]').content;
history.replaceState(null, "", location.pathname + location.hash);   // keep the token out of the address bar
const $ = (s, el) => (el || document).querySelector(s);
const $$ = (s, el) => Array.from((el || document).querySelectorAll(s));
const esc = s => String(s == null ? "" : s).replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const S = {jobs: [], project: null, view: null, outputsKey: "", facesKey: {}, files: []};

async function api(path, body, method) {
  const opts = {method: method || (body === undefined ? "GET" : "POST"), headers: {"X-Veriswap-Token": TOKEN}};
  if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
  const r = await fetch(path, opts);
  let d = null;
  try { d = await r.json(); } catch (e) { d = {error: r.statusText}; }
  if (!r.ok) throw new Error(d && d.error || r.statusText);
  return d;
}
const fileURL = (p, dl) => `/api/file?path=${encodeURIComponent(p)}&token=${encodeURIComponent(TOKEN)}${dl ? "&download=1" : ""}`;
function toast(msg, bad) {
  const t = $("#toast"); t.textContent = msg; t.className = bad ? "bad" : ""; t.hidden = false;
  clearTimeout(toast._t); toast._t = setTimeout(() => { t.hidden = true; }, bad ? 9000 : 3500);
}
const guard = fn => async (...a) => { try { await fn(...a); } catch (e) { toast(e.message, true); } };
const fmtS = s => s == null ? "-" : s >= 3600 ? `${Math.floor(s / 3600)}h ${Math.round(s % 3600 / 60)}m` : s >= 60 ? `${Math.floor(s / 60)}m ${Math.round(s % 60)}s` : `${Math.round(s)}s`;
const base = p => String(p).split("/").pop();

// ---------------------------------------------------------------- tabs
function showTab() {
  const [tab, arg] = (location.hash.slice(1) || "swap").split("/");
  $$(".page").forEach(p => p.classList.toggle("on", p.id === "page-" + tab));
  $$("#tabs a").forEach(a => a.classList.toggle("on", a.dataset.tab === tab));
  if (tab === "swap") { refreshProjects(arg ? decodeURIComponent(arg) : S.project); }
  if (tab === "check") refreshCheck();
  if (tab === "detect") refreshDetect();
  if (tab === "keys") refreshKeys();
  if (tab === "jobs") renderJobsTable();
}
window.addEventListener("hashchange", showTab);

// ---------------------------------------------------------------- files, uploads
async function listFiles(dir, kind) { return (await api(`/api/files?dir=${encodeURIComponent(dir || "")}&kind=${kind || "any"}`)).files; }
async function upload(file, dir) {
  const r = await fetch(`/api/upload?dir=${encodeURIComponent(dir || "uploads")}&name=${encodeURIComponent(file.name)}`,
    {method: "POST", headers: {"X-Veriswap-Token": TOKEN}, body: file});
  const d = await r.json().catch(() => ({error: r.statusText}));
  if (!r.ok) throw new Error(d.error || r.statusText);
  return d;
}
function fillSelect(sel, items, keep, blank) {
  const old = keep ? (sel.multiple ? $$("option:checked", sel).map(o => o.value) : [sel.value]) : [];
  sel.innerHTML = (blank ? `<option value="">${esc(blank)}</option>` : "") +
    items.map(it => `<option value="${esc(it.value)}">${esc(it.label)}</option>`).join("");
  $$("option", sel).forEach(o => { if (old.includes(o.value)) o.selected = true; });
}

// ---------------------------------------------------------------- jobs (server-sent events)
function jobLine(j, opts) {
  if (!j) return "";
  const pct = j.state === "done" ? null : j.total ? Math.min(100, Math.round(100 * (j.done || 0) / j.total)) : null;
  const busy = j.active && pct == null;
  let extra = "";
  if (j.state === "failed") extra = ` <span class="err">${esc(j.error || "failed")}</span>`;
  else if (j.active && j.phase) extra = ` ${esc(j.phase)}${pct != null ? ` ${j.done}/${j.total}` : ""}`;
  else if (j.state === "done" && j.seconds != null) extra = ` in ${fmtS(j.seconds)}`;
  if (j.state === "done" && j.result && j.result.note) extra += ` <span class="small">(${esc(j.result.note)})</span>`;
  const btns = [];
  if (!(opts && opts.noButtons)) {
    if (j.active && j.kind !== "train") btns.push(`<button data-act="cancel" data-id="${j.id}" class="ghost danger">Cancel</button>`);
    if (j.can_resume && j.kind !== "train" && j.kind !== "check") btns.push(`<button data-act="resume" data-id="${j.id}" class="ghost">Resume</button>`);
  }
  return `<span class="state s-${j.state}">${esc(j.state)}</span> ${esc(j.title)}${extra} ${btns.join("")}` +
    (j.active || pct != null ? `<div class="bar${busy ? " busy" : ""}"><i style="width:${pct || 0}%"></i></div>` : "");
}
document.addEventListener("click", guard(async ev => {
  const b = ev.target.closest("button[data-act]");
  if (!b) return;
  await api(`/api/jobs/${b.dataset.id}/${b.dataset.act}`, {});
  if (b.dataset.act === "log") return;
}));
function onJobs(jobs) {
  const before = JSON.stringify(S.jobs.map(j => [j.id, j.state]));
  S.jobs = jobs;
  const n = jobs.filter(j => j.active).length;
  $("#jobs-badge").hidden = !n; $("#jobs-badge").textContent = n;
  if ($("#page-jobs").classList.contains("on")) renderJobsTable();
  if ($("#page-swap").classList.contains("on") && S.project) renderProjectJobs();
  if ($("#page-check").classList.contains("on")) renderChecks();
  if ($("#page-detect").classList.contains("on")) renderDetectJobs();
  const after = JSON.stringify(jobs.map(j => [j.id, j.state]));
  if (before !== after && S.project) loadProject(S.project);    // a step finished: its outputs changed
}
function connectEvents() {
  const es = new EventSource(`/api/events?token=${encodeURIComponent(TOKEN)}`);
  es.addEventListener("jobs", e => onJobs(JSON.parse(e.data).jobs));
  es.onerror = () => { $("#foot").textContent = "connection to the server lost: retrying..."; };
  es.onopen = () => { $("#foot").textContent = ""; };
}
function renderJobsTable() {
  const tb = $("#jobs-table tbody");
  tb.innerHTML = S.jobs.map(j => {
    const pct = j.state === "done" ? 100 : j.total ? Math.round(100 * (j.done || 0) / j.total) : 0;
    const acts = [];
    if (j.active) acts.push(j.kind === "train" ? `<button data-act="stop" data-id="${j.id}">Stop</button>` : `<button data-act="cancel" data-id="${j.id}" class="danger">Cancel</button>`);
    if (j.can_resume) acts.push(`<button data-act="resume" data-id="${j.id}">Resume</button>`);
    acts.push(`<button class="ghost" data-log="${j.id}">Log</button>`);
    return `<tr><td>${esc((j.created || "").replace("T", " ").replace("Z", ""))}</td><td>${esc(j.title)}${j.error ? `<div class="err small">${esc(j.error)}</div>` : ""}</td>
      <td>${esc(j.project || "")}</td><td><span class="state s-${j.state}">${esc(j.state)}</span></td>
      <td><div class="bar${j.active && !j.total ? " busy" : ""}"><i style="width:${pct}%"></i></div> ${esc(j.phase || "")}</td><td>${acts.join("")}</td></tr>`;
  }).join("") || `<tr><td colspan=6 class="hint">No jobs yet.</td></tr>`;
}
document.addEventListener("click", guard(async ev => {
  const b = ev.target.closest("button[data-log]");
  if (!b) return;
  const r = await fetch(`/api/jobs/${b.dataset.log}/log`, {headers: {"X-Veriswap-Token": TOKEN}});
  const pre = $("#job-log"); pre.hidden = false; pre.textContent = await r.text() || "(empty log)";
}));

// ---------------------------------------------------------------- swap
async function refreshProjects(select) {
  const d = await api("/api/projects");
  const ul = $("#project-list");
  ul.innerHTML = d.projects.map(n => `<li data-name="${esc(n)}">${esc(n)}</li>`).join("") || `<li class="hint">none yet</li>`;
  const vids = (await listFiles("", "media")).filter(f => !f.path.startsWith("swaps/") || f.path.includes("/inputs/") || f.path.includes("/out/"));
  S.files = vids;
  const items = vids.map(f => ({value: f.path, label: f.path}));
  fillSelect($("#new-a"), items, true, "choose..."); fillSelect($("#new-b"), items, true, "choose...");
  const keys = (await api("/api/keys")).keys;
  fillSelect($("#cv-key"), keys.map(k => ({value: k.dir, label: `${k.name} (${k.signer ? k.signer.subject : ""})`})), true,
    keys.length ? null : "a new local identity (keys/local)");
  const name = select && d.projects.includes(select) ? select : (d.projects.length === 1 ? d.projects[0] : null);
  if (name) await selectProject(name); else { $("#project-view").hidden = true; $("#project-empty").hidden = false; }
}
$("#project-list").addEventListener("click", e => { const li = e.target.closest("li[data-name]"); if (li) location.hash = "swap/" + encodeURIComponent(li.dataset.name); });
async function selectProject(name) {
  S.project = name; S.outputsKey = ""; S.facesKey = {}; S.previewKey = "";
  $$("#project-list li").forEach(li => li.classList.toggle("on", li.dataset.name === name));
  $("#project-view").hidden = false; $("#project-empty").hidden = true;
  await loadProject(name);
}
async function loadProject(name) {
  if (loadProject.busy) { loadProject.again = true; return; }
  loadProject.busy = true;
  try {
    const v = await api(`/api/projects/${encodeURIComponent(name)}`);
    if (name !== S.project) return;
    S.view = v; renderProject(v);
  } catch (e) { toast(e.message, true); } finally {
    loadProject.busy = false;
    if (loadProject.again) { loadProject.again = false; if (S.project) loadProject(S.project); }
  }
}
const lastJob = (kind, pred) => S.jobs.find(j => j.project === S.project && j.kind === kind && (!pred || pred(j)));
function renderProjectJobs() {
  const ex = lastJob("extract") || lastJob("samples");
  const sm = lastJob("samples");
  $("#job-extract").innerHTML = jobLine(sm && sm.active ? sm : ex);
  $("#job-sort").innerHTML = jobLine(lastJob("sort"));
  const tr = lastJob("train");
  $("#job-train").innerHTML = jobLine(tr, {noButtons: true});
  $("#job-convert").innerHTML = jobLine(lastJob("convert"));
  const busy = S.jobs.some(j => j.project === S.project && j.active);
  $("#btn-extract").disabled = busy;
  $("#btn-train").disabled = busy || !S.view || !S.view.faces.a.count || !S.view.faces.b.count;
  $("#btn-pause").disabled = !(tr && tr.active); $("#btn-stop").disabled = !(tr && tr.active);
  $("#btn-resume").disabled = !(tr && tr.can_resume) || busy;
  $("#btn-convert").disabled = busy || !(S.view && S.view.model.exists);
  if (tr && tr.active) {
    $("#st-its").textContent = tr.its ? `${tr.its.toFixed(2)} it/s` : "-";
    $("#st-eta").textContent = fmtS(tr.eta_s);
    if (tr.done != null) $("#st-it").textContent = tr.done + (tr.total ? ` / ${tr.total}` : "");
    if (tr.loss_a != null) $("#st-loss").textContent = `${tr.loss_a.toFixed(4)} / ${tr.loss_b.toFixed(4)}`;
    clearTimeout(renderProjectJobs._t);
    renderProjectJobs._t = setTimeout(() => S.project && loadProject(S.project), 1500);   // preview + loss plot
  }
}
function thumbs(el, info, key) {
  const k = JSON.stringify(info.faces.map(f => [f.path, f.in, f.identity]));
  if (S.facesKey[key] === k) return;
  S.facesKey[key] = k;
  el.innerHTML = info.faces.map(f => {
    const why = Object.entries(f.reject || {}).map(([r, w]) => `${r}: ${w}`).join("; ");
    const rej = f.in === "rejected" || why;
    return `<figure class="${rej ? "rej" : ""}" title="${esc(f.file)}${f.identity != null ? ` - distance ${f.identity.toFixed(2)}` : ""}${why ? " - " + esc(why) : ""}">
      <img loading="lazy" src="${fileURL(f.path)}" alt="${esc(f.file)}"><figcaption>${f.identity != null ? f.identity.toFixed(2) : ""}${f.in === "rejected" ? " out" : ""}</figcaption></figure>`;
  }).join("") || `<p class="hint">no faces yet</p>`;
}
function lineChart(series, opt) {
  const W = opt && opt.w || 520, H = opt && opt.h || 200, L = 46, R = 10, T = 12, B = 28;
  const pts = series.flatMap(s => s.points);
  if (!pts.length) return `<p class="hint">${esc(opt && opt.empty || "no data yet")}</p>`;
  let x0 = Math.min(...pts.map(p => p[0])), x1 = Math.max(...pts.map(p => p[0]));
  let y0 = opt && opt.y0 != null ? opt.y0 : Math.min(...pts.map(p => p[1])), y1 = opt && opt.y1 != null ? opt.y1 : Math.max(...pts.map(p => p[1]));
  if (x1 === x0) x1 = x0 + 1; if (y1 === y0) { y1 = y0 + 1e-3; }
  const X = x => L + (x - x0) / (x1 - x0) * (W - L - R), Y = y => H - B - (y - y0) / (y1 - y0) * (H - T - B);
  let g = `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#999"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#999"/>`;
  for (let i = 0; i <= 4; i++) { const y = y0 + (y1 - y0) * i / 4; g += `<text x="${L - 4}" y="${Y(y) + 4}" font-size="10" text-anchor="end" fill="#666">${y.toPrecision(3)}</text><line x1="${L}" x2="${W - R}" y1="${Y(y)}" y2="${Y(y)}" stroke="#eee"/>`; }
  g += `<text x="${L}" y="${H - 8}" font-size="10" fill="#666">${x0}</text><text x="${W - R}" y="${H - 8}" font-size="10" text-anchor="end" fill="#666">${Math.round(x1 * 100) / 100}</text>`;
  g += `<text x="${(L + W) / 2}" y="${H - 6}" font-size="11" text-anchor="middle" fill="#444">${esc(opt && opt.xlabel || "")}</text>`;
  series.forEach((s, i) => {
    const d = s.points.map((p, k) => `${k ? "L" : "M"}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join("");
    g += s.dots || s.points.length === 1 ? s.points.map(p => `<circle cx="${X(p[0])}" cy="${Y(p[1])}" r="3" fill="${s.color}"/>`).join("") : `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.8"/>`;
    const lx = L + 10 + i * (opt && opt.legend || 110);
    g += `<rect x="${lx}" y="${T}" width="10" height="10" fill="${s.color}"/><text x="${lx + 14}" y="${T + 9}" font-size="11" fill="#333">${esc(s.name)}</text>`;
  });
  return `<svg viewBox="0 0 ${W} ${H}" xmlns="http://www.w3.org/2000/svg">${g}</svg>`;
}
const lastIt = m => { const r = m.loss.length ? m.loss[m.loss.length - 1].iteration : null, it = Math.max(m.iteration || 0, r || 0); return it || "-"; };
function renderProject(v) {
  const p = v.project;
  $("#p-title").textContent = p.name;
  $("#p-inputs").innerHTML = `A: ${p.a.map(x => `<code>${esc(x)}</code>`).join(", ")} &nbsp; B: ${p.b.map(x => `<code>${esc(x)}</code>`).join(", ")}` +
    (p.ref_a ? ` &nbsp; A's reference photo <code>${esc(p.ref_a)}</code>` : "");
  thumbs($("#faces-a"), v.faces.a, "a"); thumbs($("#faces-b"), v.faces.b, "b");
  $("#fa-count").textContent = `${v.faces.a.count} faces${v.faces.a.rejected ? `, ${v.faces.a.rejected} set aside` : ""}`;
  $("#fb-count").textContent = `${v.faces.b.count} faces${v.faces.b.rejected ? `, ${v.faces.b.rejected} set aside` : ""}`;
  const m = v.model;
  if (m.preview) {
    const k = m.preview + m.preview_mtime;
    if (S.previewKey !== k) { S.previewKey = k; const img = $("#preview"); img.src = fileURL(m.preview) + `&t=${m.preview_mtime}`; img.hidden = false;
      $("#preview-cap").textContent = `Preview at iteration ${lastIt(m)}: rows A, A→A, A→B, B, B→B, B→A.`; }
  } else { $("#preview").hidden = true; }
  const tr = lastJob("train");
  if (!(tr && tr.active)) {
    $("#st-it").textContent = lastIt(m);
    $("#st-its").textContent = m.its ? `${m.its.toFixed(2)} it/s` : "-";
    $("#st-eta").textContent = "-";
    const last = m.loss.length ? m.loss[m.loss.length - 1] : null;
    $("#st-loss").textContent = last ? `${last.loss_a.toFixed(4)} / ${last.loss_b.toFixed(4)}` : "-";
  }
  $("#loss-plot").innerHTML = lineChart([
    {name: "loss A", color: "#2f6fdb", points: m.loss.map(r => [r.iteration, r.loss_a])},
    {name: "loss B", color: "#d9822b", points: m.loss.map(r => [r.iteration, r.loss_b])}], {xlabel: "iteration", empty: "The loss plot appears once training starts."});
  const vids = [...p.a, ...p.b].concat(S.files.map(f => f.path).filter(x => !p.a.includes(x) && !p.b.includes(x) && !x.includes("/out/")));
  const cur = $("#cv-video").value;
  fillSelect($("#cv-video"), vids.filter(x => /\.(mp4|mov|m4v|mkv|avi|webm)$/i.test(x)).map(x => ({value: x, label: x})), false);
  if (cur) $("#cv-video").value = cur;
  const ok = JSON.stringify(v.outputs.map(o => [o.video, o.mtime]));
  if (ok !== S.outputsKey) {
    S.outputsKey = ok;
    $("#results").innerHTML = v.outputs.slice().reverse().map(o => `
      <div class="result"><h3>${esc(base(o.video))}</h3>
      <div class="videos"><figure><video class="v-source" src="${o.source ? fileURL(o.source) : ""}" controls muted loop playsinline preload="auto"></video><figcaption>source: ${esc(o.source || "unknown")}</figcaption></figure>
      <figure><video class="v-result" src="${fileURL(o.video)}" controls muted loop autoplay playsinline preload="auto"></video><figcaption>result (signed, labelled as an AI swap)</figcaption></figure></div>
      <p class="downloads"><a href="${fileURL(o.video, 1)}" download>Download video</a>
      ${o.labels ? `<a href="${fileURL(o.labels, 1)}" download>labels.json</a>` : ""}
      ${o.manifest ? `<a href="${fileURL(o.manifest, 1)}" download>C2PA manifest (JSON)</a>` : ""}
      <button data-checkpath="${esc(o.video)}">Check it</button> <button class="ghost" data-playboth>Play both</button></p></div>`).join("");
    $$("#results video.v-result").forEach(vid => vid.play().catch(() => {}));
  }
  renderProjectJobs();
}
document.addEventListener("click", guard(async e => {
  const b = e.target.closest("button[data-playboth]");
  if (b) { $$("video", b.closest(".result")).forEach(v => { v.currentTime = 0; v.play().catch(() => {}); }); return; }
  const c = e.target.closest("button[data-checkpath]");
  if (c) { await startCheck(c.dataset.checkpath); location.hash = "check"; }
}));
$("#btn-samples").addEventListener("click", guard(async () => {
  const d = await api("/api/projects");
  let n = 1; while (d.projects.includes(n === 1 ? "sample-faces" : `sample-faces-${n}`)) n++;
  const name = n === 1 ? "sample-faces" : `sample-faces-${n}`;
  await api("/api/projects", {name, samples: true});
  toast(`swap "${name}" created from the built-in faces`);
  location.hash = "swap/" + name;
}));
$("#btn-create").addEventListener("click", guard(async () => {
  const a = $("#new-a").value, b = $("#new-b").value;
  if (!a || !b) throw new Error("choose a video (or photo) for person A and one for person B: upload them first");
  let name = $("#new-name").value.trim();
  if (!name) {      // none typed: my-swap, my-swap-2, ...
    const have = (await api("/api/projects")).projects;
    let n = 1; while (have.includes(n === 1 ? "my-swap" : `my-swap-${n}`)) n++;
    name = n === 1 ? "my-swap" : `my-swap-${n}`;
  }
  await api("/api/projects", {name, a: a ? [a] : [], b: b ? [b] : []});
  location.hash = "swap/" + encodeURIComponent(name);
}));
$("#up-video").addEventListener("change", guard(async e => {
  const done = [];
  for (const f of e.target.files) { const r = await upload(f, "uploads"); done.push(r.path); toast(`uploaded ${r.path}`); }
  e.target.value = ""; await refreshProjects(S.project);
  for (const path of done) {         // fill person A, then person B, with what was just uploaded
    const sel = !$("#new-a").value ? $("#new-a") : !$("#new-b").value ? $("#new-b") : null;
    if (sel) sel.value = path;
  }
}));
const step = (s, body) => guard(async () => { await api(`/api/projects/${encodeURIComponent(S.project)}/${s}`, body ? body() : {}); });
$("#btn-extract").addEventListener("click", step("extract"));
$("#btn-clean-a").addEventListener("click", step("sort", () => ({person: "a", max_distance: $("#clean-dist").value || null, reject_blur: $("#clean-blur").value || null})));
$("#btn-clean-b").addEventListener("click", step("sort", () => ({person: "b", max_distance: $("#clean-dist").value || null, reject_blur: $("#clean-blur").value || null})));
$("#btn-restore-a").addEventListener("click", step("sort", () => ({person: "a", restore: true})));
$("#btn-restore-b").addEventListener("click", step("sort", () => ({person: "b", restore: true})));
$("#btn-train").addEventListener("click", step("train", () => ({time_limit: $("#tr-time").value || null, iterations: $("#tr-iters").value || null,
  batch_size: $("#tr-batch").value, preview_every: $("#tr-prev").value})));
$("#btn-pause").addEventListener("click", guard(async () => { const j = lastJob("train"); if (j) await api(`/api/jobs/${j.id}/pause`, {}); }));
$("#btn-stop").addEventListener("click", guard(async () => { const j = lastJob("train"); if (j) await api(`/api/jobs/${j.id}/stop`, {}); }));
$("#btn-resume").addEventListener("click", guard(async () => { const j = lastJob("train"); if (j) await api(`/api/jobs/${j.id}/resume`, {}); }));
$("#btn-convert").addEventListener("click", step("convert", () => ({video: $("#cv-video").value, direction: $("#cv-dir").value, key: $("#cv-key").value || null})));

// ---------------------------------------------------------------- check
function verdictClass(v) {
  if (v.exit_code === 2) return "v-err";
  if (v.trusted) return "v-ok";
  if (["tampered", "signature not valid"].includes(v.word) || /likely manipulated/.test(v.headline || "")) return "v-bad";
  return "v-warn";
}
async function startCheck(path) {
  const det = $("#check-det").value, tag = $("#check-tag").value;
  await api("/api/jobs", {kind: "check", title: `check ${base(path)}`, params: {path, detector: det || null, tag_key: tag || null}});
}
async function refreshCheck() {
  const files = await listFiles("", "media");
  fillSelect($("#check-pick"), files.map(f => ({value: f.path, label: f.path})), true);
  const det = await detectorFolders();
  fillSelect($("#check-det"), det.map(d => ({value: d, label: d})), true, "none");
  const keys = (await api("/api/keys")).keys.filter(k => k.has_tag_key);
  fillSelect($("#check-tag"), keys.map(k => ({value: k.dir + "/tag.key", label: k.dir + "/tag.key"})), true, "none");
  renderChecks();
}
function renderChecks() {
  const el = $("#check-results");
  const checks = S.jobs.filter(j => j.kind === "check");
  const open = new Set($$("#check-results details[open]").map(d => d.dataset.id));
  const key = JSON.stringify(checks.map(j => [j.id, j.state]));
  if (el.dataset.key === key) return;
  el.dataset.key = key;
  el.innerHTML = checks.map(j => {
    const r = j.result, v = r && r.verdict;
    if (!v) return `<div class="card check-card" data-job="${j.id}"><div class="jobline">${jobLine(j)}</div><div class="meta">${esc(j.params.path)}</div></div>`;
    return `<div class="card check-card" data-job="${j.id}"><div class="meta">${esc(j.params.path)} - checked in ${(r.seconds || 0).toFixed(1)} s</div>
      <div class="verdict ${verdictClass(v)}" data-word="${esc(v.word)}"><div class="word">${esc(v.word)}</div><div class="headline">${esc(v.headline)}</div>
      <div class="small" style="color:#fff;opacity:.9">${v.trusted ? "trusted as declared" : "not trusted"}</div></div>
      <ul>${(v.reasons || []).slice(0, 6).map(x => `<li>${esc(String(x).replace(/^[ -]+/, ""))}</li>`).join("")}</ul>
      ${(v.conflicts || []).map(c => `<div class="err">Conflict: ${esc(c)}</div>`).join("")}
      <details data-id="${j.id}" ${open.has(j.id) ? "open" : ""}><summary>Full report (manifest, tags, detector timeline)</summary>
      <iframe sandbox="allow-scripts" src="/api/jobs/${j.id}/report?token=${encodeURIComponent(TOKEN)}" loading="lazy"></iframe></details></div>`;
  }).join("") || `<p class="hint">Checked files appear here.</p>`;
}
const drop = $("#drop");
["dragenter", "dragover"].forEach(t => drop.addEventListener(t, e => { e.preventDefault(); drop.classList.add("over"); }));
["dragleave", "drop"].forEach(t => drop.addEventListener(t, e => { e.preventDefault(); drop.classList.remove("over"); }));
async function checkFiles(files) { for (const f of files) { const r = await upload(f, "uploads"); await startCheck(r.path); } }
drop.addEventListener("drop", guard(async e => checkFiles(e.dataTransfer.files)));
$("#check-file").addEventListener("change", guard(async e => { await checkFiles(e.target.files); e.target.value = ""; }));
$("#btn-check-pick").addEventListener("click", guard(async () => { if ($("#check-pick").value) await startCheck($("#check-pick").value); }));

async function detectorFolders() {
  return (await listFiles("detect/detectors", "any")).filter(f => f.name === "config.json").map(f => f.path.replace(/\/config\.json$/, ""));
}
// the Detect page: detect.js

// ---------------------------------------------------------------- keys
async function refreshKeys() {
  const keys = (await api("/api/keys")).keys;
  const row = (k, v, mono) => v ? `<tr><td>${esc(k)}</td><td class="${mono ? "mono" : ""}">${esc(v)}</td></tr>` : "";
  $("#keys-list").innerHTML = keys.map(k => `<div class="card keycard"><h2>${esc(k.name)} <span class="count">${esc(k.dir)}</span></h2>
    <table>${row("signer", k.signer.subject)}${row("issued by", k.signer.issuer)}${row("valid", `${k.signer.not_before.slice(0, 10)} to ${k.signer.not_after.slice(0, 10)}`)}
    ${row("signer public key (Ed25519)", k.signer.public_key, 1)}${row("signer certificate SHA-256", k.signer.sha256, 1)}
    ${k.root ? row("trust anchor", k.root.subject) + row("trust anchor SHA-256", k.root.sha256, 1) + row("trust anchor valid until", k.root.not_after.slice(0, 10)) : ""}
    ${row("private keys", k.encrypted ? "encrypted with a passphrase" : "not encrypted (kept in the work folder, mode 0600)")}</table>
    <p class="downloads">${k.anchor ? `<a href="${fileURL(k.anchor, 1)}" download>Export trust anchor (root.pem)</a>` : ""}
    <a href="${fileURL(k.signer.pem, 1)}" download>signer.pem</a></p></div>`).join("") ||
    `<div class="card"><p>No identity yet. Create one on the left, or convert a swap: a local identity is made for signing it.</p></div>`;
}
$("#btn-key").addEventListener("click", guard(async () => {
  await api("/api/keys", {name: $("#key-name").value.trim(), org: $("#key-org").value.trim()});
  toast("identity created"); refreshKeys();
}));

// ---------------------------------------------------------------- start
document.addEventListener("DOMContentLoaded", async () => {   // after every script of the page (detect.js)
  try { onJobs((await api("/api/jobs")).jobs); } catch (e) { toast(e.message, true); }
  connectEvents();
  showTab();
});
