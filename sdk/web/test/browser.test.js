// The Web SDK in a real browser (headless Chromium from Debian's packages, driven by
// playwright-core) against a real gateway: a page tracks events through a 429 storm, a reload
// mid-flight and an offline spell, and every event arrives exactly once, as the contacts API
// shows. Run by scripts/browser-test: node browser.test.js BIN_DIR OUT_DIR.
'use strict';

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require(process.env.PLAYWRIGHT_CORE || 'playwright-core');

const [binDir, outDir] = process.argv.slice(2);
const EMAIL = 'visitor@example.com';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

async function until(what, limitMs, check) {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const found = await check();
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

async function api(base, method, route, key, body) {
  const response = await fetch(base + route, {
    method,
    headers: { authorization: `apiKey ${key}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

async function main() {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-browser-'));
  const gwPort = await freePort();
  const gateway = `http://127.0.0.1:${gwPort}`;
  // A low SDK limit makes the 429 storm certain: every burst of tracking outruns it.
  const child = spawn(path.join(binDir, 'gateway'), [
    '--listen', `127.0.0.1:${gwPort}`, '--data-dir', path.join(work, 'data'), '--rate-limit-sdk', '5',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  let browser;
  let page;
  try {
    const created = await until('the first store', 30000, async () => {
      const line = output.split('\n').find((l) => l.startsWith('{') && l.includes('apiKey'));
      return line && JSON.parse(line);
    });
    const { storeId, apiKey } = created;
    await until('the gateway', 30000, async () => {
      try { return (await fetch(`${gateway}/healthz`)).ok; } catch (e) { return false; }
    });
    const integration = await api(gateway, 'POST', '/v1/custom-integrations/', apiKey, { name: 'Web' });
    const type = await api(gateway, 'POST', `/v1/custom-integrations/${integration.body.id}/custom-event-types/`, apiKey, {
      name: 'Page viewed', category: 'receive', alias: 'page-viewed', receiveType: 'web/mobile-app',
      fields: [
        { id: 'email', name: 'Email', type: 'email', required: true, isPrimaryKey: true },
        { id: 'n', name: 'N', type: 'integer', required: true },
      ],
    });
    if (type.status !== 201) throw new Error(`event type: ${JSON.stringify(type.body)}`);

    // The demo page, on an origin of its own, loads the SDK from the gateway with the
    // integrity hash the README gives.
    const script = await (await fetch(`${gateway}/sdk/v1/sluice.js`)).text();
    const integrity = 'sha384-' + crypto.createHash('sha384').update(script).digest('base64');
    const pagePort = await freePort();
    const html = `<!doctype html><html><head><meta charset="utf-8"><title>Sluice SDK demo</title>
<script src="${gateway}/sdk/v1/sluice.js" integrity="${integrity}" crossorigin="anonymous"></script>
<style>body{font:16px system-ui;margin:3em}button{font-size:1.2em;padding:.5em 1em}</style></head>
<body><h1>Sluice Web SDK demo</h1><p>Visitor <code id="tracker"></code></p>
<button id="view" onclick="Sluice.track('page-viewed',{email:'${EMAIL}',n:0})">Track a page view</button>
<p>Waiting to be sent: <b id="pending">0</b></p>
<script>Sluice.init({endpoint:'${gateway}',storeId:'${storeId}'});
document.getElementById('tracker').textContent=Sluice.trackerId();
setInterval(function(){document.getElementById('pending').textContent=Sluice.pending()},100);</script>
</body></html>`;
    const server = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(html);
    });
    await new Promise((r) => server.listen(pagePort, '127.0.0.1', r));
    const site = `http://127.0.0.1:${pagePort}/`;

    browser = await chromium.launch({
      executablePath: process.env.SLUICE_CHROMIUM || '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    const context = await browser.newContext();
    page = await context.newPage();
    const answers = {};
    page.on('response', (r) => {
      if (r.url().includes('/sdk/custom-events/')) answers[r.status()] = (answers[r.status()] || 0) + 1;
    });
    await page.goto(site);
    const track = (from, to) => page.evaluate(([from, to, email]) => {
      for (let n = from; n <= to; n++) Sluice.track('page-viewed', { email, n });
    }, [from, to, EMAIL]);

    // A burst far over the limit: 429s, then retries after Retry-After.
    await track(1, 20);
    await sleep(500);
    // A reload mid-flight: what was unsent is sent from the next page, once.
    await track(21, 35);
    const beforeReload = await page.evaluate(() => Sluice.pending());
    if (beforeReload < 5) throw new Error(`only ${beforeReload} events were in flight at the reload`);
    await page.reload();
    // An offline spell: nothing can leave, nothing is lost.
    await context.setOffline(true);
    await track(36, 45);
    await sleep(1500);
    const waiting = await page.evaluate(() => Sluice.pending());
    if (waiting < 10) throw new Error(`offline, ${waiting} events waited; expected at least 10`);
    await context.setOffline(false);

    await until('the page to send everything', 120000, async () => (await page.evaluate(() => Sluice.pending())) === 0);
    const expected = Array.from({ length: 45 }, (_, i) => i + 1);
    const seen = await until('45 activities', 60000, async () => {
      const reply = await api(gateway, 'GET', `/v1/contacts/${EMAIL}/activities?limit=1000`, apiKey);
      const ns = reply.status === 200 ? reply.body.results.map((a) => a.fields.n) : [];
      return ns.length >= 45 && ns;
    });
    await sleep(2000);
    const final = (await api(gateway, 'GET', `/v1/contacts/${EMAIL}/activities?limit=1000`, apiKey)).body.results.map((a) => a.fields.n);
    const sorted = [...final].sort((a, b) => a - b);
    if (JSON.stringify(sorted) !== JSON.stringify(expected)) {
      throw new Error(`events arrived ${JSON.stringify(sorted)} (first look ${seen.length}); expected 1..45 once each`);
    }
    if (!answers[429]) throw new Error(`no 429 was seen: ${JSON.stringify(answers)}`);
    fs.mkdirSync(outDir, { recursive: true });
    await page.screenshot({ path: path.join(outDir, 'sdk-demo.png') });
    console.log(`ok    45 events tracked through a 429 storm, a reload and an offline spell arrived once each (answers ${JSON.stringify(answers)})`);
    console.log(`ok    SDK ${script.length} bytes, integrity ${integrity}; screenshot ${path.join(outDir, 'sdk-demo.png')}`);
    server.close();
  } catch (error) {
    console.error(`FAIL  ${error.message}`);
    console.error(output.split('\n').slice(-30).join('\n'));
    process.exitCode = 1;
  } finally {
    if (browser) await browser.close();
    child.kill('SIGTERM');
  }
}

main();
