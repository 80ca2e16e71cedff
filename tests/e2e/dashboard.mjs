// End-to-end: the operator dashboard in headless Chromium (Debian's package) driven by
// playwright-core. Signs in with a user name and password (a wrong password first: the error
// is shown), sees a live incident arrive (pushed by an agent over the HTTP API while the page
// is open), acknowledges it through the UI, checks that the audit trail names the user, that
// the session cookie is HttpOnly/SameSite=Strict and that no request URL ever held a secret
// (the password, the session token, the agent's key), takes a screenshot, signs out. Fails on any page error or
// Content-Security-Policy violation, and renders the API docs page under the same policy.
//
// With CLIP_MP4 (an evidence clip cut by the agent's code) the agent uploads it and announces
// it in an incident update; the operator opens the incident's detail and the clip plays (its
// readyState and an advancing currentTime are checked).
//
// Env: IOC_URL, USER_NAME, USER_PASSWORD, AGENT_KEY, SNAPSHOT_JPEG (a JPEG file), CLIP_MP4,
// SCREENSHOT (PNG out). Without AGENT_KEY it only signs in and takes the screenshot (used for the
// README; with OPEN_CLIP=1 the newest incident's clip open).
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { randomUUID, createHash } from 'node:crypto';

const { IOC_URL, USER_NAME, USER_PASSWORD, AGENT_KEY, SNAPSHOT_JPEG, CLIP_MP4, SCREENSHOT } = process.env;
const fail = (msg) => { console.error(`dashboard e2e: ${msg}`); process.exit(1); };
if (!IOC_URL || !USER_NAME || !USER_PASSWORD || !SCREENSHOT) fail('IOC_URL, USER_NAME, USER_PASSWORD and SCREENSHOT are required');

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
  const urls = [];
  page.on('request', (r) => urls.push(r.url()));
  const loaded = await page.goto(`${IOC_URL}/`);
  if (!loaded.headers()['content-security-policy']) fail('the dashboard is served without a Content-Security-Policy');
  await page.waitForSelector('#login:not(.hidden)', { timeout: 15000 });
  await page.fill('#login-name', USER_NAME);
  await page.fill('#login-password', `${USER_PASSWORD}-wrong`);
  await page.click('#login-form button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#login-error').textContent.length > 0, null, { timeout: 15000 });
  await page.fill('#login-password', USER_PASSWORD);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#app:not(.hidden)', { timeout: 15000 });
  await page.waitForSelector('#live.on', { timeout: 15000 });
  const who = await page.textContent('#whoami');
  if (!who.includes(USER_NAME)) fail(`the signed-in user is not shown: "${who}"`);

  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === 'roadsight_session');
  if (!session) fail(`no session cookie: ${JSON.stringify(cookies.map((c) => c.name))}`);
  if (!session.httpOnly || session.sameSite !== 'Strict' || session.path !== '/') {
    fail(`session cookie flags: httpOnly ${session.httpOnly}, sameSite ${session.sameSite}, path ${session.path}`);
  }
  if ((await page.evaluate(() => document.cookie)).includes(session.value)) fail('the page script can read the session token');

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
    if (!text.includes('patrol sent') || !text.includes(`user ${USER_NAME}`)) fail(`acknowledgement not shown with its user: "${text}"`);
    if (CLIP_MP4) {
      // The clip is cut once the post-roll is recorded: it arrives after the start, with an update.
      const clip = readFileSync(CLIP_MP4);
      const clipId = randomUUID();
      await agent('PUT', `/clips/${clipId}?site=e2e&camera=cam-e2e`, clip, 'video/mp4');
      await agent('POST', '/events', JSON.stringify(event(7, {
        type: 'incident', incident_id: incidentId, kind: 'stopped_vehicle', state: 'updated', severity: 'warning',
        zone_id: 'carriageway', measures: {},
        clip: { clip_id: clipId, content_type: 'video/mp4', bytes: clip.length, sha256: createHash('sha256').update(clip).digest('hex'),
          starts_at: new Date(now - 5000).toISOString(), duration_ms: 4000, chunks: Math.max(1, Math.ceil(clip.length / 262144)) },
      }, now + 5000)));
      await page.waitForSelector(`${item} button.clip:not(.hidden)`, { timeout: 10000 });
      await page.click(`${item} button.clip`);
      await page.waitForSelector('#incident-detail:not(.hidden)', { timeout: 10000 });
      await page.waitForFunction(() => document.querySelector('#clip-player').readyState >= 3, null, { timeout: 15000 });
      const t0 = await page.evaluate(() => document.querySelector('#clip-player').currentTime);
      await page.waitForFunction((t) => document.querySelector('#clip-player').currentTime > t + 0.5, t0, { timeout: 15000 });
      const played = await page.evaluate(() => {
        const v = document.querySelector('#clip-player');
        return { readyState: v.readyState, currentTime: v.currentTime, duration: v.duration, width: v.videoWidth };
      });
      const download = await page.getAttribute('#clip-download', 'href');
      if (!download.endsWith(`/api/v1/clips/${clipId}`)) fail(`download link: ${download}`);
      // Hold a frame a second in for the screenshot.
      await page.evaluate(() => { const v = document.querySelector('#clip-player'); v.pause(); v.currentTime = 1.0; });
      await page.waitForFunction(() => !document.querySelector('#clip-player').seeking, null, { timeout: 10000 });
      console.log(JSON.stringify({ clip_played: played }));
    }
    await page.waitForSelector('.chart svg rect', { timeout: 10000 });
    // The audit trail, read by the page itself (with its cookie), names the user.
    const audit = await page.evaluate(async () => (await fetch('/api/v1/audit', { credentials: 'same-origin' })).json());
    const ack = audit.find((r) => r.action === 'incident.acknowledge' && r.target === incidentId);
    if (!ack || ack.actor !== `user ${USER_NAME}`) fail(`audit does not name the user: ${JSON.stringify(audit)}`);
    console.log(JSON.stringify({ incident_id: incidentId, audit_actor: ack.actor }));
  }
  if (!AGENT_KEY && process.env.OPEN_CLIP) {
    // The README's picture: the newest incident that has its clip, open and a second in.
    await page.waitForSelector('li.incident button.clip:not(.hidden)', { timeout: 60000 });
    await page.click('li.incident button.clip:not(.hidden)');
    await page.waitForFunction(() => document.querySelector('#clip-player').readyState >= 3, null, { timeout: 15000 });
    await page.evaluate(() => { const v = document.querySelector('#clip-player'); v.pause(); v.currentTime = 2.0; });
    await page.waitForFunction(() => !document.querySelector('#clip-player').seeking, null, { timeout: 10000 });
  }
  await page.waitForTimeout(500);
  await page.screenshot({ path: SCREENSHOT, fullPage: true });

  // No secret ever went into a URL (fetches, the event stream, snapshot images included).
  const secrets = [USER_PASSWORD, session.value, AGENT_KEY].filter(Boolean);
  const leaked = urls.filter((u) => secrets.some((s) => u.includes(s) || u.includes(encodeURIComponent(s))));
  if (leaked.length) fail(`secrets in request URLs: ${leaked.join(' ')}`);
  if (!urls.some((u) => u.includes('/api/v1/stream')) || (AGENT_KEY && !urls.some((u) => u.includes('/api/v1/snapshots/')))) {
    fail(`the stream and the snapshot were requested: ${urls.join(' ')}`);
  }
  if (CLIP_MP4 && !urls.some((u) => u.includes('/api/v1/clips/'))) fail(`the clip was requested: ${urls.join(' ')}`);

  // Sign out: back to the form, and the old session is dead.
  await page.click('#logout');
  await page.waitForSelector('#login:not(.hidden)', { timeout: 10000 });
  const after = await page.evaluate(async () => (await fetch('/api/v1/session', { credentials: 'same-origin' })).status);
  if (after !== 401) fail(`after signing out GET /api/v1/session answered ${after}`);
  const replay = await fetch(`${IOC_URL}/api/v1/session`, { headers: { Cookie: `${session.name}=${session.value}` } });
  if (replay.status !== 401) fail(`the signed-out token still works: ${replay.status}`);
  // The API docs page renders under the same policy.
  await page.goto(`${IOC_URL}/api/v1/docs`);
  await page.waitForSelector('#docs section.op', { timeout: 10000 });
  if (errors.length) fail(`JavaScript errors on the page: ${errors.join('; ')}`);
  console.log(JSON.stringify({ requests: urls.length }));
} finally {
  await browser.close();
}
