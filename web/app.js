// app.js - the page of `ebm serve`.  Talks only to the JSON API of the server that sent it
// (docs/API.md): /api/models, /api/sample, /api/chain (Server-Sent Events), /api/energy,
// /api/complete and /api/metrics.  No libraries: plain DOM and <canvas>.
'use strict';

const $ = (sel, root = document) => root.querySelector(sel);
const PALETTE = ['#5aa9ff', '#ff9f5a', '#7ee2a8', '#ff7b9c', '#c89bff', '#ffd166', '#4dd4d4', '#f28cff',
                 '#a3e35a', '#ff6b6b', '#8fb3ff', '#e0c097', '#6be0a0', '#ffa3d1', '#b0b8c4', '#f5e663'];
const SIDE = 28; // image side; the models take 28x28

const state = {
  models: [],
  model: null,        // the chosen entry of /api/models
  watch: null,        // {abort, steps: [], energies: []} while a chain streams
  ink: new Float32Array(SIDE * SIDE), // the drawing, 0 = black .. 1 = white
  metricsTimer: null,
};

// ---- talking to the server ----------------------------------------------------------

async function api(path, body) {
  const opts = body === undefined ? {} :
    { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) };
  const res = await fetch(path, opts);
  let data = null;
  try { data = await res.json(); } catch (e) { /* not JSON */ }
  if (!res.ok) throw new Error(data && data.error ? data.error : `${res.status} ${res.statusText}`);
  return data;
}

function setStatus(el, text, kind = '') {
  el.textContent = text;
  el.className = 'status' + (kind ? ' ' + kind : '');
}

// A number field, or undefined when empty; refuses text that is not a number (JSON would
// carry it as null, which the server reads as "default").
function num(form, name) {
  const el = form.elements[name];
  if (!el || el.value.trim() === '') return undefined;
  const v = Number(el.value);
  if (!Number.isFinite(v)) throw new Error(`${el.parentElement.firstChild.textContent.trim()}: "${el.value}" is not a number`);
  return v;
}

// The sampler settings of a form (the same names as the API's parameters).
function samplerParams(form) {
  const f = form.elements, p = { model: state.model.name };
  for (const k of ['n', 'cols', 'steps', 'every', 'eps']) {
    const v = num(form, k);
    if (v !== undefined) p[k] = v;
  }
  if (f.noise && f.noise.value.trim() !== '') {
    const v = f.noise.value.trim();
    p.noise = v === 'auto' ? 'auto' : num(form, 'noise');
  }
  if (f.sampler) p.sampler = f.sampler.value;
  const seed = num(form, 'seed');
  p.seed = seed !== undefined ? seed : Math.floor(Math.random() * 1e6);
  if (f.digit && state.model.conditional && f.digit.value !== '') p.digit = Number(f.digit.value);
  return p;
}

// PNG pixels per image pixel so that a grid of `cols` images is about `width` pixels wide.
function scaleFor(cols, width) {
  return Math.max(1, Math.min(8, Math.floor(width / (cols * (SIDE + 2)))));
}

// Shows an image at the largest whole multiple of its size that fits `width` (crisp pixels).
function fitPixels(img, width) {
  img.onload = () => {
    const k = Math.max(1, Math.floor(width / img.naturalWidth));
    img.style.width = `${img.naturalWidth * k}px`;
    img.style.height = `${img.naturalHeight * k}px`;
  };
}

// ---- tabs and models ----------------------------------------------------------------

function showTab(name) {
  for (const b of document.querySelectorAll('.tabs button')) {
    const on = b.dataset.tab === name;
    b.setAttribute('aria-selected', on ? 'true' : 'false');
    $(`#tab-${b.dataset.tab}`).hidden = !on;
  }
  if (location.hash !== `#${name}`) history.replaceState(null, '', `#${name}`);
  clearInterval(state.metricsTimer);
  state.metricsTimer = null;
  if (name === 'train') {
    loadMetrics();
    state.metricsTimer = setInterval(() => { if ($('#train-live').checked) loadMetrics(); }, 5000);
  }
}

function chooseModel(name) {
  state.model = state.models.find(m => m.name === name) || state.models[0];
  const m = state.model, d = m.defaults;
  const layers = k => (m.spec.match(new RegExp(`${k}:`, 'g')) || []).length;
  $('#model-info').textContent = `${layers('conv')} conv + ${layers('dense')} dense · ` +
    `${(m.params / 1000).toFixed(1)}k params · ${m.conditional ? m.classes + ' classes' : 'unconditional'} · ${m.backend}`;
  $('#model-info').title = m.spec;
  for (const form of [$('#gen-form'), $('#watch-form')]) {
    form.elements.eps.value = d.eps;
    form.elements.noise.value = d.noise;
  }
  for (const label of document.querySelectorAll('.cond')) label.hidden = !m.conditional;
  for (const sel of document.querySelectorAll('select[name="digit"]')) {
    sel.length = 1;
    for (const k of m.digits || []) sel.add(new Option(String(k), String(k)));
  }
  $('#draw-probs').hidden = !m.conditional;
  scoreDrawing();
}

async function loadModels() {
  const r = await api('/api/models');
  state.models = r.models;
  const sel = $('#model');
  for (const m of r.models) sel.add(new Option(m.name, m.name));
  $('#version').textContent = r.version;
  chooseModel(r.models[0].name);
}

// ---- Generate -----------------------------------------------------------------------

async function generate(ev) {
  ev.preventDefault();
  const form = $('#gen-form'), btn = $('#gen-run'), status = $('#gen-status');
  let p;
  try { p = samplerParams(form); } catch (e) { setStatus(status, e.message, 'error'); return; }
  const n = p.n || 16, cols = p.cols || Math.ceil(Math.sqrt(n));
  p.scale = scaleFor(cols, 280);
  btn.disabled = true;
  setStatus(status, `Sampling ${n} images…`, 'busy');
  try {
    const r = await api('/api/sample', p);
    addCard(r);
    setStatus(status, `${r.n} images in ${r.seconds.toFixed(2)} s`);
  } catch (e) {
    setStatus(status, e.message, 'error');
  } finally {
    btn.disabled = false;
  }
}

function addCard(r) {
  const gallery = $('#gallery');
  const empty = $('.empty', gallery);
  if (empty) empty.remove();
  const card = document.createElement('article');
  card.className = 'card';
  const img = document.createElement('img');
  img.className = 'pixel';
  img.src = r.image;
  img.alt = `${r.n} samples, seed ${r.seed}`;
  const meta = document.createElement('div');
  meta.className = 'meta';
  const items = [
    ['images', r.n], ['seed', r.seed], ['steps', `${r.steps} ${r.sampler.toUpperCase()}`], ['ε', r.eps], ['σ', r.noise],
    ['mean E', r.mean_energy.toFixed(3)], ['time', `${r.seconds.toFixed(2)} s`],
  ];
  if (r.sampler === 'mala') items.push(['accept', r.acceptance.toFixed(2)]);
  if (r.digit !== null) items.unshift(['digit', r.digit]);
  for (const [k, v] of items) {
    const s = document.createElement('span');
    s.append(`${k} `);
    const b = document.createElement('b');
    b.textContent = v;
    s.append(b);
    meta.append(s);
  }
  const row = document.createElement('div');
  row.className = 'row';
  const title = document.createElement('span');
  title.className = 'small';
  title.textContent = r.model;
  const dl = document.createElement('a');
  dl.className = 'button';
  dl.href = r.image;
  dl.download = `ebm-${r.model}-seed${r.seed}.png`;
  dl.textContent = 'Download PNG';
  row.append(title, dl);
  card.append(img, row, meta);
  gallery.prepend(card);
}

// ---- Watch: a chain stream ----------------------------------------------------------

// Reads Server-Sent Events from a fetch response: calls onEvent(name, data) per event.
async function readEvents(res, onEvent) {
  const reader = res.body.getReader(), dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += dec.decode(value, { stream: true });
    let cut;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let name = 'message', data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) name = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      onEvent(name, JSON.parse(data));
    }
  }
}

async function startWatch(ev) {
  ev.preventDefault();
  stopWatch();
  const form = $('#watch-form'), status = $('#watch-status');
  let p;
  try { p = samplerParams(form); } catch (e) { setStatus(status, e.message, 'error'); return; }
  p.scale = 1;
  const w = { abort: new AbortController(), steps: [], energies: [], total: p.steps || 256 };
  state.watch = w;
  $('#watch-run').disabled = true;
  $('#watch-stop').disabled = false;
  setStatus(status, 'Starting chains…', 'busy');
  drawWatchPlot();
  try {
    const res = await fetch('/api/chain?' + new URLSearchParams(p), { signal: w.abort.signal });
    if (!res.ok) {
      let msg = `${res.status} ${res.statusText}`;
      try { msg = (await res.json()).error || msg; } catch (e) { /* keep the status line */ }
      throw new Error(msg);
    }
    await readEvents(res, (name, d) => {
      if (name === 'frame') {
        $('#watch-img').src = d.image;
        w.steps.push(d.step);
        w.energies.push(d.energies);
        w.total = d.steps;
        $('#watch-bar').style.width = `${d.steps ? 100 * d.step / d.steps : 100}%`;
        $('#watch-step').textContent = `step ${d.step} / ${d.steps} · mean energy ${d.mean_energy.toFixed(3)}`;
        setStatus(status, 'Running…', 'busy');
        drawWatchPlot();
      } else if (name === 'done') {
        const acc = d.sampler === 'mala' ? ` · acceptance ${d.acceptance.toFixed(2)}` : '';
        setStatus(status, `Done: ${d.steps} steps in ${d.seconds.toFixed(1)} s (seed ${d.seed})${acc}`);
      } else if (name === 'error') {
        throw new Error(d.error);
      }
    });
  } catch (e) {
    if (e.name !== 'AbortError') setStatus(status, e.message, 'error');
  } finally {
    if (state.watch === w) {
      state.watch = null;
      $('#watch-run').disabled = false;
      $('#watch-stop').disabled = true;
    }
  }
}

function stopWatch() {
  if (!state.watch) return;
  state.watch.abort.abort();
  setStatus($('#watch-status'), 'Stopped');
  state.watch = null;
  $('#watch-run').disabled = false;
  $('#watch-stop').disabled = true;
}

function drawWatchPlot() {
  const w = state.watch;
  const series = [];
  if (w && w.energies.length) {
    const nchains = w.energies[0].length;
    for (let c = 0; c < nchains; c++)
      series.push({ name: `chain ${c}`, color: PALETTE[c % PALETTE.length], xs: w.steps, ys: w.energies.map(e => e[c]) });
  }
  drawChart($('#watch-plot'), series, { xlabel: 'step', xmax: w ? w.total : 1, legend: false });
}

// ---- charts -------------------------------------------------------------------------

// 1, 2 or 5 times a power of ten, about range / count (at least 1 on an integer axis).
function niceStep(range, count, integer) {
  const raw = range / Math.max(1, count), p = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / p;
  const step = (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
  return integer ? Math.max(1, Math.round(step)) : step;
}

// Tick values k * step from lo to hi, and labels with the decimals that step needs.
function ticks(lo, hi, step) {
  const out = [], dec = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const expo = dec > 6 || Math.max(Math.abs(lo), Math.abs(hi)) >= 1e6;
  for (let k = Math.ceil(lo / step); k * step <= hi + step * 1e-9; k++) {
    const v = k * step;
    out.push({ v, label: k === 0 ? '0' : expo ? v.toExponential(1) : v.toFixed(dec) });
  }
  return out;
}

function fmt(v) {
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 1e4 || a < 1e-3) return v.toExponential(1);
  return String(Number(v.toPrecision(3)));
}

// Line chart of series [{name, color, xs, ys}] on a canvas, sharp on high-DPI screens.
function drawChart(canvas, series, opts = {}) {
  const dpr = window.devicePixelRatio || 1;
  if (!canvas.dataset.aspect) canvas.dataset.aspect = String(canvas.height / canvas.width);
  const W = canvas.clientWidth || canvas.width, H = Math.round(W * Number(canvas.dataset.aspect));
  canvas.width = Math.round(W * dpr);
  canvas.height = Math.round(H * dpr);
  const g = canvas.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, W, H);
  const css = getComputedStyle(document.documentElement);
  const line = css.getPropertyValue('--line').trim(), muted = css.getPropertyValue('--muted').trim();
  g.font = '11px system-ui, sans-serif';
  const legendH = opts.legend !== false && series.length > 1 ? 18 : 0;
  const L = 54, R = 12, T = 10 + legendH, B = 30;
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const s of series)
    for (let i = 0; i < s.xs.length; i++) {
      const x = s.xs[i], y = s.ys[i];
      if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
      x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
    }
  if (opts.xmax !== undefined) { x0 = Math.min(x0, 0); x1 = Math.max(x1, opts.xmax); }
  if (!Number.isFinite(x0) || !Number.isFinite(y0)) {
    g.fillStyle = muted;
    g.textAlign = 'center';
    g.fillText(opts.empty || 'no data yet', W / 2, H / 2);
    return;
  }
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
  const pad = (y1 - y0) * 0.06;
  y0 -= pad; y1 += pad;
  const px = x => L + (x - x0) / (x1 - x0) * (W - L - R);
  const py = y => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  // grid and ticks
  g.strokeStyle = line;
  g.fillStyle = muted;
  g.lineWidth = 1;
  g.textAlign = 'right';
  g.textBaseline = 'middle';
  for (const t of ticks(y0, y1, niceStep(y1 - y0, 5))) {
    g.beginPath(); g.moveTo(L, Math.round(py(t.v)) + .5); g.lineTo(W - R, Math.round(py(t.v)) + .5); g.stroke();
    g.fillText(t.label, L - 6, py(t.v));
  }
  g.textAlign = 'center';
  g.textBaseline = 'top';
  for (const t of ticks(x0, x1, niceStep(x1 - x0, 6, true))) g.fillText(t.label, px(t.v), H - B + 6);
  if (opts.xlabel) { g.textAlign = 'right'; g.fillText(opts.xlabel, W - R, H - 13); }
  // series
  g.lineWidth = 1.6;
  g.lineJoin = 'round';
  for (const s of series) {
    g.strokeStyle = s.color;
    g.beginPath();
    let pen = false;
    for (let i = 0; i < s.xs.length; i++) {
      if (!Number.isFinite(s.ys[i])) { pen = false; continue; }
      const X = px(s.xs[i]), Y = py(s.ys[i]);
      if (pen) g.lineTo(X, Y); else g.moveTo(X, Y);
      pen = true;
    }
    g.stroke();
  }
  // legend
  if (legendH) {
    let x = W - R;
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    for (const s of [...series].reverse()) {
      g.fillStyle = muted;
      g.fillText(s.name, x, 10);
      x -= g.measureText(s.name).width + 6;
      g.fillStyle = s.color;
      g.fillRect(x - 12, 8, 12, 3);
      x -= 24;
    }
  }
}

// ---- Draw ---------------------------------------------------------------------------

const canvas = $('#draw-canvas');
const CELL = canvas.width / SIDE;
let lastPoint = null, scoreTimer = null, scoreSeq = 0;

function renderDrawing() {
  const g = canvas.getContext('2d');
  g.fillStyle = '#000';
  g.fillRect(0, 0, canvas.width, canvas.height);
  for (let i = 0; i < SIDE * SIDE; i++) {
    const v = state.ink[i];
    if (v <= 0) continue;
    const c = Math.round(v * 255);
    g.fillStyle = `rgb(${c},${c},${c})`;
    g.fillRect((i % SIDE) * CELL, Math.floor(i / SIDE) * CELL, CELL, CELL);
  }
  if ($('#complete-form').elements.mode.value === 'inpaint') {
    // a faint line where the kept part ends
    const keep = $('#complete-form').elements.keep.value;
    g.strokeStyle = 'rgba(90,169,255,.45)';
    g.setLineDash([6, 6]);
    g.beginPath();
    if (keep === 'top') { g.moveTo(0, canvas.height / 2); g.lineTo(canvas.width, canvas.height / 2); }
    if (keep === 'left') { g.moveTo(canvas.width / 2, 0); g.lineTo(canvas.width / 2, canvas.height); }
    g.stroke();
    g.setLineDash([]);
  }
}

// A soft round brush of radius r (in image pixels) at (x, y).
function stamp(x, y, r) {
  for (let j = Math.floor(y - r); j <= Math.ceil(y + r); j++)
    for (let i = Math.floor(x - r); i <= Math.ceil(x + r); i++) {
      if (i < 0 || j < 0 || i >= SIDE || j >= SIDE) continue;
      const d = Math.hypot(i + 0.5 - x, j + 0.5 - y) / r;
      if (d >= 1) continue;
      const k = j * SIDE + i;
      state.ink[k] = Math.max(state.ink[k], Math.min(1, 1.6 * (1 - d * d)));
    }
}

function pointerAt(ev) {
  const rect = canvas.getBoundingClientRect();
  return { x: (ev.clientX - rect.left) / rect.width * SIDE, y: (ev.clientY - rect.top) / rect.height * SIDE };
}

function strokeTo(p) {
  const r = [0, 1.0, 1.4, 1.9][Number($('#draw-brush').value)];
  const from = lastPoint || p, dist = Math.hypot(p.x - from.x, p.y - from.y), n = Math.max(1, Math.ceil(dist / 0.3));
  for (let s = 1; s <= n; s++) stamp(from.x + (p.x - from.x) * s / n, from.y + (p.y - from.y) * s / n, r);
  lastPoint = p;
  renderDrawing();
  clearTimeout(scoreTimer);
  scoreTimer = setTimeout(scoreDrawing, 120);
}

function drawingPixels() {
  const m = state.model, out = new Array(SIDE * SIDE);
  for (let i = 0; i < out.length; i++) out[i] = Number((m.lo + (m.hi - m.lo) * state.ink[i]).toFixed(4));
  return out;
}

async function scoreDrawing() {
  if (!state.model) return;
  const seq = ++scoreSeq;
  try {
    const r = await api('/api/energy', { model: state.model.name, pixels: drawingPixels() });
    if (seq !== scoreSeq) return; // a newer stroke has been scored since
    $('#draw-energy').textContent = r.energy.toFixed(3);
    if (r.probs) showProbs(r.probs);
  } catch (e) {
    $('#draw-energy').textContent = '–';
    setStatus($('#complete-status'), e.message, 'error');
  }
}

function showProbs(probs) {
  const bars = $('#draw-bars');
  bars.textContent = '';
  const best = probs.indexOf(Math.max(...probs));
  probs.forEach((p, k) => {
    const bar = document.createElement('div');
    bar.className = 'bar' + (k === best ? ' top' : '');
    bar.title = `p(${k} | x) = ${p.toFixed(3)}`;
    const fill = document.createElement('i');
    fill.style.height = `${Math.max(1, p * 100)}%`;
    const label = document.createElement('span');
    label.textContent = String(k);
    bar.append(fill, label);
    bars.append(bar);
  });
}

async function complete(ev) {
  ev.preventDefault();
  const form = $('#complete-form'), f = form.elements, btn = $('#complete-run'), status = $('#complete-status');
  const p = { model: state.model.name, mode: f.mode.value, pixels: drawingPixels() };
  try {
    for (const k of ['n', 'steps']) { const v = num(form, k); if (v !== undefined) p[k] = v; }
    const seed = num(form, 'seed');
    p.seed = seed !== undefined ? seed : Math.floor(Math.random() * 1e6);
  } catch (e) { setStatus(status, e.message, 'error'); return; }
  if (state.model.conditional && f.digit.value !== '') p.digit = Number(f.digit.value);
  if (p.mode === 'inpaint') {
    const keep = f.keep.value;
    p.mask = Array.from(state.ink, (v, i) =>
      keep === 'top' ? (Math.floor(i / SIDE) < SIDE / 2 ? 1 : 0) :
      keep === 'left' ? (i % SIDE < SIDE / 2 ? 1 : 0) : (v > 0.05 ? 1 : 0));
  }
  const n = p.n || 4;
  p.scale = scaleFor(Math.min(n, 8), 540);
  btn.disabled = true;
  setStatus(status, `Running ${n} chains…`, 'busy');
  try {
    const r = await api('/api/complete', p);
    const img = $('#complete-img');
    img.src = r.image;
    $('.result', form).hidden = false;
    $('#complete-caption').textContent =
      `${r.mode}, ${r.steps} ${r.sampler.toUpperCase()} steps, seed ${r.seed} · energy of the drawing ` +
      `${r.input_energy.toFixed(3)} → completions ${r.energies.map(e => e.toFixed(2)).join(', ')}`;
    setStatus(status, `${r.n} completions in ${r.seconds.toFixed(2)} s`);
  } catch (e) {
    setStatus(status, e.message, 'error');
  } finally {
    btn.disabled = false;
  }
}

// ---- Training dashboard -------------------------------------------------------------

async function loadMetrics() {
  const status = $('#train-status'), body = $('#train-body');
  let r;
  try {
    r = await api('/api/metrics');
  } catch (e) {
    status.textContent = e.message;
    body.hidden = true;
    return;
  }
  body.hidden = false;
  const c = r.columns, n = c.iteration.length;
  if (r.waiting) status.textContent = `Waiting for ${r.path} to appear (start ebm train with --metrics ${r.path}).`;
  else if (!n) status.textContent = `${r.path}: no rows yet.`;
  else {
    const last = n - 1;
    status.textContent = `${r.path}: ${r.rows} rows · iteration ${c.iteration[last]} · ` +
      `${(c.time[last] / 60).toFixed(1)} min of training · loss ${fmt(c.loss[last])} · ` +
      `updated ${new Date().toLocaleTimeString()}`;
  }
  const x = c.iteration;
  drawChart($('#plot-loss'), [{ name: 'loss', color: PALETTE[0], xs: x, ys: c.loss }], { xlabel: 'iteration' });
  drawChart($('#plot-energy'), [
    { name: 'E+ (data)', color: PALETTE[2], xs: x, ys: c.e_pos },
    { name: 'E− (samples)', color: PALETTE[1], xs: x, ys: c.e_neg },
  ], { xlabel: 'iteration' });
  drawChart($('#plot-grad'), [{ name: 'grad norm', color: PALETTE[4], xs: x, ys: c.grad_norm }], { xlabel: 'iteration' });
  const img = $('#train-samples');
  img.hidden = !r.samples;
  $('#train-nosamples').hidden = !!r.samples;
  if (r.samples && img.src !== r.samples) img.src = r.samples;
}

// ---- start --------------------------------------------------------------------------

function init() {
  for (const b of document.querySelectorAll('.tabs button')) b.addEventListener('click', () => showTab(b.dataset.tab));
  $('#model').addEventListener('change', e => chooseModel(e.target.value));
  $('#gen-form').addEventListener('submit', generate);
  $('#gen-clear').addEventListener('click', () => {
    $('#gallery').innerHTML = '<p class="empty muted">Generated grids appear here, newest first.</p>';
  });
  $('#watch-form').addEventListener('submit', startWatch);
  $('#watch-stop').addEventListener('click', stopWatch);
  canvas.addEventListener('pointerdown', ev => {
    canvas.setPointerCapture(ev.pointerId);
    lastPoint = null;
    strokeTo(pointerAt(ev));
  });
  canvas.addEventListener('pointermove', ev => { if (ev.buttons & 1) strokeTo(pointerAt(ev)); });
  canvas.addEventListener('pointerup', () => { lastPoint = null; });
  $('#draw-clear').addEventListener('click', () => { state.ink.fill(0); renderDrawing(); scoreDrawing(); });
  $('#complete-form').addEventListener('submit', complete);
  $('#complete-form').elements.mode.addEventListener('change', renderDrawing);
  $('#complete-form').elements.keep.addEventListener('change', renderDrawing);
  fitPixels($('#watch-img'), 300);
  fitPixels($('#complete-img'), 540);
  renderDrawing();
  drawWatchPlot();
  const tab = location.hash.slice(1);
  showTab(['generate', 'watch', 'draw', 'train'].includes(tab) ? tab : 'generate');
  loadModels().catch(e => setStatus($('#gen-status'), `Cannot reach the server: ${e.message}`, 'error'));
}

init();
