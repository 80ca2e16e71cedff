// End-to-end: the operator dashboard in headless Chromium (Debian's package) driven by
// playwright-core. Loads the page, sees a live incident arrive (pushed by an "agent" over the
// HTTP API while the page is open), acknowledges it through the UI, takes a screenshot, opens
// the API docs page; fails on any page error or Content-Security-Policy violation.
//
// Env: IOC_URL, OPERATOR_KEY, AGENT_KEY, SNAPSHOT_JPEG (a JPEG file), SCREENSHOT (PNG out).
// Without AGENT_KEY it only loads the page and takes the screenshot (used for the README).
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';

const { IOC_URL, OPERATOR_KEY, AGENT_KEY, SNAPSHOT_JPEG, SCREENSHOT } = process.env;
const fail = (msg) => { console.error(`dashboard e2e: ${msg}`); process.exit(1); };
if (!IOC_URL || !OPERATOR_KEY || !SCREENSHOT) fail('IOC_URL, OPERATOR_KEY and SCREENSHOT are required');

async function agent(method, path, body, contentType = 'application/json') {
  const res = await fetch(`${IOC_URL}/api/v1${path}`, {
    method, body, headers: { 'X-Api-Key': AGENT_KEY, 'Content-Type': contentType },
  });
  if (!res.ok) fail(`${method} ${path}: ${res.status} ${await res.text()}`);
}

function event(seq, body, at) {
  return {
    schema: 1, event_id: randomUUID(), seq, site_id: 'e2e', camera_id: 'cam-e2e', agent_id: 'agent-e2e',
    occurred_at: new Date(at).toISOString(), pts_ms: seq * 40, ...body,
  };
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 950 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // Chromium reports what the Content-Security-Policy blocked (inline style, script, …) here.
  page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) errors.push(`CSP violation: ${m.text()}`); });
  page.on('dialog', (d) => d.accept('Checked on camera: vehicle broken down, patrol sent'));
  const loaded = await page.goto(`${IOC_URL}/#key=${OPERATOR_KEY}`);
  if (!loaded.headers()['content-security-policy']) fail('the dashboard is served without a Content-Security-Policy');
  await page.waitForSelector('#app:not(.hidden)', { timeout: 15000 });
  await page.waitForSelector('#live.on', { timeout: 15000 });

  if (AGENT_KEY) {
    const now = Date.now();
    const snapshotId = randomUUID();
    const incidentId = randomUUID();
    await agent('POST', '/events', JSON.stringify([
      event(1, { type: 'camera_status', state: 'running', name: 'Nga Tu So (e2e)', location: { lat: 21.003, lon: 105.820, road: 'Truong Chinh' } }, now - 60000),
      ...[2, 3, 4, 5].map((s) => event(s, {
        type: 'line_crossing', line_id: 'stop_line', direction: 'northbound',
        object: { track_id: s, class: s % 2 ? 'motorcycle' : 'car', confidence: 0.8, bbox: [10, 10, 40, 30] },
      }, now - 50000 + s * 1000)),
    ]));
    await agent('PUT', `/snapshots/${snapshotId}?site=e2e&camera=cam-e2e`, readFileSync(SNAPSHOT_JPEG), 'image/jpeg');
    await agent('POST', '/events', JSON.stringify(event(6, {
      type: 'incident', incident_id: incidentId, kind: 'stopped_vehicle', state: 'started', severity: 'warning',
      zone_id: 'carriageway', object: { track_id: 9, class: 'car', confidence: 0.9, bbox: [100, 100, 80, 60] },
      measures: { duration_ms: 12000 }, snapshot: { snapshot_id: snapshotId, content_type: 'image/jpeg', bytes: 1 },
    }, now)));

    const item = `li.incident[data-incident="${incidentId}"]`;
    await page.waitForSelector(item, { timeout: 10000 });
    await page.waitForFunction((sel) => {
      const img = document.querySelector(`${sel} img.thumb`);
      return img && img.complete && img.naturalWidth > 0;
    }, item, { timeout: 10000 });
    await page.click(`${item} button.ack`);
    await page.waitForSelector(`${item}.acknowledged`, { timeout: 10000 });
    const text = await page.textContent(`${item} .workflow`);
    if (!text.includes('patrol sent')) fail(`acknowledgement note not shown: "${text}"`);
    await page.waitForSelector('.chart svg rect', { timeout: 10000 });
    console.log(JSON.stringify({ incident_id: incidentId }));
  }
  await page.waitForTimeout(500);
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  // The API docs page renders under the same policy.
  await page.goto(`${IOC_URL}/api/v1/docs`);
  await page.waitForSelector('#docs section.op', { timeout: 10000 });
  if (errors.length) fail(`JavaScript errors on the page: ${errors.join('; ')}`);
} finally {
  await browser.close();
}
