// e2e.mjs - the page of `ebm serve` in a real browser: Debian's chromium driven by
// playwright-core (no browser download).  Expects a running server at $EBM_URL, started
// with --metrics (tests/cli/serve_e2e.sh does that).  Opens the page, generates a grid,
// watches a chain stream until at least one frame (and the end) has arrived, draws on the
// canvas and reads the energy, completes the drawing, opens the training dashboard, and
// saves a screenshot of each tab under $SHOTS (build/test-logs).  Exits 1 on any failure,
// including an error in the page's console.
import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const url = process.env.EBM_URL;
const shots = process.env.SHOTS || 'build/test-logs';
const genSteps = process.env.E2E_STEPS || '40'; // Langevin steps of the Generate runs (256 for a picture)
if (!url) {
  console.error('e2e.mjs: set EBM_URL to a running `ebm serve` (tests/cli/serve_e2e.sh does)');
  process.exit(2);
}
mkdirSync(shots, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), 'ebm-chromium-'));
let failures = 0;
const t0 = Date.now();

function ok(what) { console.log(`ok   ${what} (${((Date.now() - t0) / 1000).toFixed(1)} s)`); }
function fail(what) { console.log(`FAIL ${what}`); failures++; }

async function step(what, fn) {
  try {
    await fn();
    ok(what);
  } catch (e) {
    fail(`${what}: ${e.message.split('\n')[0]}`);
  }
}

const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
         '--disable-component-update', '--no-first-run'],
  viewport: { width: 1280, height: 860 },
  deviceScaleFactor: 1,
});
const page = ctx.pages()[0] || await ctx.newPage();
page.setDefaultTimeout(60000);
const consoleErrors = [];
// the one 400 that the bad-value step asks for is logged by chromium too: not a page error
page.on('console', m => { if (m.type() === 'error' && !/status of 400/.test(m.text())) consoleErrors.push(m.text()); });
page.on('pageerror', e => consoleErrors.push(e.message));

try {
  await step('page loads and lists the models', async () => {
    const res = await page.goto(url);
    if (!res.ok()) throw new Error(`status ${res.status()}`);
    await page.waitForFunction(() => document.querySelectorAll('#model option').length > 0);
    const info = await page.textContent('#model-info');
    if (!/params/.test(info)) throw new Error(`model info "${info}"`);
  });

  await step('Generate: a bad value shows the server\'s message', async () => {
    await page.fill('#gen-form input[name="steps"]', '5000');
    await page.click('#gen-run');
    await page.waitForFunction(() => /steps must be an integer/.test(document.querySelector('#gen-status').textContent));
  });

  await step('Generate: a grid appears in the gallery, downloadable as PNG', async () => {
    await page.fill('#gen-form input[name="n"]', '16');
    await page.fill('#gen-form input[name="steps"]', genSteps);
    await page.fill('#gen-form input[name="seed"]', '1');
    await page.click('#gen-run');
    await page.waitForSelector('#gallery .card img');
    await page.waitForFunction(() => document.querySelector('#gallery .card img').naturalWidth > 0);
    const href = await page.getAttribute('#gallery .card a.button', 'href');
    if (!href.startsWith('data:image/png;base64,')) throw new Error('download link is not a PNG');
    const status = await page.textContent('#gen-status');
    if (!/16 images/.test(status)) throw new Error(`status "${status}"`);
    // more runs with other seeds go first in the gallery
    for (const seed of [2, 3]) {
      await page.fill('#gen-form input[name="seed"]', String(seed));
      await page.click('#gen-run');
      await page.waitForFunction(k => document.querySelectorAll('#gallery .card').length === k, seed);
    }
    const first = await page.textContent('#gallery .card .meta');
    if (!/seed 3/.test(first)) throw new Error(`newest card first: "${first}"`);
    await page.screenshot({ path: join(shots, 'serve-generate.png') });
  });

  await step('Watch: streamed frames arrive, the energy plot grows, the run ends', async () => {
    await page.click('button[data-tab="watch"]');
    await page.fill('#watch-form input[name="n"]', '9');
    await page.fill('#watch-form input[name="steps"]', '60');
    await page.fill('#watch-form input[name="every"]', '6');
    await page.fill('#watch-form input[name="seed"]', '3');
    await page.click('#watch-run');
    await page.waitForFunction(() => /^step \d+ \/ 60/.test(document.querySelector('#watch-step').textContent));
    await page.waitForFunction(() => document.querySelector('#watch-img').naturalWidth > 0);
    await page.waitForFunction(() => /^Done/.test(document.querySelector('#watch-status').textContent));
    const step = await page.textContent('#watch-step');
    if (!/^step 60 \/ 60/.test(step)) throw new Error(`last frame "${step}"`);
    await page.screenshot({ path: join(shots, 'serve-watch.png') });
  });

  await step('Draw: strokes on the canvas give an energy', async () => {
    await page.click('button[data-tab="draw"]');
    const box = await page.locator('#draw-canvas').boundingBox();
    const at = (x, y) => [box.x + x * box.width, box.y + y * box.height];
    // a "7": a top bar and a diagonal
    await page.mouse.move(...at(0.28, 0.25));
    await page.mouse.down();
    for (const [x, y] of [[0.45, 0.25], [0.70, 0.25], [0.60, 0.45], [0.50, 0.62], [0.42, 0.78]])
      await page.mouse.move(...at(x, y), { steps: 6 });
    await page.mouse.up();
    await page.waitForFunction(() => /^-?\d+\.\d{3}$/.test(document.querySelector('#draw-energy').textContent));
    const e = Number(await page.textContent('#draw-energy'));
    if (!Number.isFinite(e)) throw new Error('energy is not a number');
    const lit = await page.evaluate(() => {
      const g = document.querySelector('#draw-canvas').getContext('2d');
      const d = g.getImageData(0, 0, 280, 280).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) n += d[i] > 128;
      return n;
    });
    if (lit < 500) throw new Error(`only ${lit} bright canvas pixels after drawing`);
  });

  await step('Draw: complete (inpaint) shows completions', async () => {
    await page.fill('#complete-form input[name="n"]', '4');
    await page.fill('#complete-form input[name="steps"]', '30');
    await page.fill('#complete-form input[name="seed"]', '4');
    await page.click('#complete-run');
    await page.waitForFunction(() => document.querySelector('#complete-img').naturalWidth > 0);
    await page.waitForFunction(() => /completions in/.test(document.querySelector('#complete-status').textContent));
    await page.screenshot({ path: join(shots, 'serve-draw.png') });
  });

  await step('Training: the dashboard plots the log and shows the sample grid', async () => {
    await page.click('button[data-tab="train"]');
    await page.waitForFunction(() => /rows · iteration/.test(document.querySelector('#train-status').textContent));
    await page.waitForFunction(() => {
      const img = document.querySelector('#train-samples');
      return !img.hidden && img.naturalWidth > 0;
    });
    await page.screenshot({ path: join(shots, 'serve-train.png') });
  });

  await step('Generate tab again, for the picture', async () => {
    await page.click('button[data-tab="generate"]');
    const height = await page.evaluate(() => Math.ceil(document.body.getBoundingClientRect().height) + 8);
    await page.screenshot({ path: join(shots, 'serve.png'), clip: { x: 0, y: 0, width: 1280, height: Math.min(860, height) } });
  });

  if (consoleErrors.length) fail(`errors in the page's console: ${consoleErrors.join(' | ')}`);
  else ok('no errors in the page\'s console');
} finally {
  await ctx.close();
  rmSync(profile, { recursive: true, force: true });
}

console.log(`${failures ? 'FAILED' : 'passed'}: screenshots in ${shots}/serve-*.png`);
process.exit(failures ? 1 : 0);
