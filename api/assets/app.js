// Roadsight IOC dashboard: cameras (grid + map), live incident feed with the operator
// workflow, line counts per camera. Plain JS against /api/v1; live updates over SSE.
// People sign in with a user name and password: the server answers with an HttpOnly session
// cookie, which every request (fetch, EventSource, <img>) carries by itself; no secret is ever
// put in a URL or in storage this script can read. Requests send X-Requested-With (the
// server's CSRF check for cookie-authenticated changes).
'use strict';

const I18N = {
  vi: {
    title: 'Trung tâm điều hành giao thông', offline: 'Mất kết nối', online: 'Trực tuyến', api_docs: 'Tài liệu API',
    login_title: 'Đăng nhập trung tâm điều hành', login: 'Đăng nhập', cameras: 'Camera', incidents: 'Sự cố',
    user_name: 'Tên đăng nhập', password: 'Mật khẩu', logout: 'Đăng xuất',
    bad_login: 'Sai tên đăng nhập hoặc mật khẩu', throttled: 'Đăng nhập sai quá nhiều lần; thử lại sau {s} giây',
    session_ended: 'Phiên làm việc đã kết thúc; vui lòng đăng nhập lại', login_failed: 'Không đăng nhập được',
    viewer: 'người xem', operator: 'điều hành viên', admin: 'quản trị viên',
    hide_resolved: 'Ẩn sự cố đã xử lý', counts: 'Lưu lượng (lượt qua vạch, 1 phút)', acknowledge: 'Xác nhận',
    resolve: 'Đã xử lý', note_ack: 'Ghi chú xác nhận:', note_resolve: 'Ghi chú xử lý:',
    stopped_vehicle: 'Xe dừng trên làn', wrong_way: 'Đi ngược chiều', congestion: 'Ùn tắc', speeding: 'Quá tốc độ',
    red_light: 'Vượt đèn đỏ', no_stopping: 'Dừng đỗ sai quy định', lane_restriction: 'Đi sai làn',
    info: 'thông tin', warning: 'cảnh báo', critical: 'nghiêm trọng', started: 'đang diễn ra', updated: 'đang diễn ra',
    ended: 'đã kết thúc', acknowledged_by: 'Đã xác nhận bởi', resolved_by: 'Đã xử lý bởi', running: 'hoạt động',
    connecting: 'đang kết nối', retrying: 'thử lại', stopped: 'dừng', unknown: 'chưa rõ', last_seen: 'cập nhật',
    missing: 'thiếu', events: 'sự kiện', no_counts: 'Chưa có dữ liệu lưu lượng', no_incidents: 'Không có sự cố',
    duration: 'thời gian', speed: 'tốc độ', occupancy: 'mật độ', passed_by: 'xe vượt qua', red_for: 'đèn đỏ đã',
    related: 'xe liên quan', play_clip: 'Xem clip', download_clip: 'Tải clip', clip_pending: 'Clip đang được gửi về',
    car: 'ô tô', motorcycle: 'xe máy', bus: 'xe buýt', truck: 'xe tải', bicycle: 'xe đạp', person: 'người',
  },
  en: {
    title: 'Traffic Operations Centre', offline: 'Offline', online: 'Live', api_docs: 'API docs',
    login_title: 'Sign in to the operations centre', login: 'Sign in', cameras: 'Cameras', incidents: 'Incidents',
    user_name: 'User name', password: 'Password', logout: 'Sign out',
    bad_login: 'Wrong user name or password', throttled: 'Too many failed sign-ins; try again in {s} s',
    session_ended: 'Your session has ended; please sign in again', login_failed: 'Could not sign in',
    viewer: 'viewer', operator: 'operator', admin: 'administrator',
    hide_resolved: 'Hide resolved incidents', counts: 'Traffic (line crossings per minute)', acknowledge: 'Acknowledge',
    resolve: 'Resolve', note_ack: 'Acknowledgement note:', note_resolve: 'Resolution note:',
    stopped_vehicle: 'Stopped vehicle', wrong_way: 'Wrong way', congestion: 'Congestion', speeding: 'Speeding',
    red_light: 'Red light', no_stopping: 'No stopping', lane_restriction: 'Lane restriction',
    info: 'info', warning: 'warning', critical: 'critical', started: 'ongoing', updated: 'ongoing', ended: 'ended',
    acknowledged_by: 'Acknowledged by', resolved_by: 'Resolved by', running: 'running', connecting: 'connecting',
    retrying: 'retrying', stopped: 'stopped', unknown: 'unknown', last_seen: 'last seen', missing: 'missing',
    events: 'events', no_counts: 'No counts yet', no_incidents: 'No incidents', duration: 'duration', speed: 'speed',
    occupancy: 'occupancy', passed_by: 'passed by', red_for: 'red for', related: 'related vehicles',
    play_clip: 'Play clip', download_clip: 'Download clip', clip_pending: 'The clip is still on its way',
    car: 'car', motorcycle: 'motorcycle', bus: 'bus', truck: 'truck', bicycle: 'bicycle', person: 'person',
  },
};
const CLASS_COLORS = { car: '#4e9af1', motorcycle: '#f5a623', bus: '#7ed321', truck: '#bd10e0', bicycle: '#50e3c2', person: '#e94e77' };

const state = {
  lang: localStorage.getItem('roadsight.lang') || 'vi',
  user: null,
  cameras: [],
  incidents: new Map(),
  source: null,
  refresh: null,
};

const t = (k) => (I18N[state.lang] && I18N[state.lang][k]) || k;
const $ = (sel) => document.querySelector(sel);
const fmtTime = (ms) => new Date(ms).toLocaleString(state.lang === 'vi' ? 'vi-VN' : 'en-GB');

function applyI18n() {
  document.documentElement.lang = state.lang;
  document.querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = t(el.dataset.i18n); });
  $('#lang').textContent = state.lang === 'vi' ? 'EN' : 'VI';
}

async function api(path, options = {}) {
  const res = await fetch('/api/v1' + path, {
    ...options,
    credentials: 'same-origin',
    headers: { 'X-Requested-With': 'roadsight', 'Content-Type': 'application/json', ...(options.headers || {}) },
  });
  if (!res.ok) {
    let message = res.statusText;
    try { message = (await res.json()).error.message; } catch (_) { /* not JSON */ }
    const err = new Error(message); err.status = res.status; err.retryAfter = res.headers.get('retry-after');
    // A signed-in page whose session ended (expired, signed out elsewhere, user disabled).
    if (res.status === 401 && state.user && path !== '/session') signedOut(t('session_ended'));
    throw err;
  }
  if (res.status === 204) return null;
  return res.headers.get('content-type')?.includes('json') ? res.json() : res.text();
}

// ---------- cameras ----------
function renderCameras() {
  const grid = $('#camera-grid');
  grid.innerHTML = '';
  for (const c of state.cameras) {
    const card = document.createElement('div');
    card.className = `camera ${c.state}`;
    card.dataset.camera = c.camera_id;
    card.innerHTML = `<div class="name"></div><div class="road"></div>
      <div class="status"><span class="dot"></span><span class="st"></span></div><div class="seen"></div>`;
    card.querySelector('.name').textContent = c.name || c.camera_id;
    card.querySelector('.road').textContent = [c.road, c.site_id].filter(Boolean).join(' · ');
    card.querySelector('.st').textContent = t(c.state) + (c.reason ? ` — ${c.reason}` : '');
    card.querySelector('.seen').textContent =
      `${t('last_seen')} ${fmtTime(c.last_seen_ms)} · ${c.received} ${t('events')}` + (c.missing ? ` · ${t('missing')} ${c.missing}` : '');
    grid.appendChild(card);
  }
  renderMap();
}

function renderMap() {
  const svg = $('#map');
  const located = state.cameras.filter((c) => c.lat != null && c.lon != null);
  svg.innerHTML = '<rect x="0" y="0" width="400" height="180" class="map-bg"/>';
  if (!located.length) return;
  const lats = located.map((c) => c.lat), lons = located.map((c) => c.lon);
  const [minLat, maxLat, minLon, maxLon] = [Math.min(...lats), Math.max(...lats), Math.min(...lons), Math.max(...lons)];
  const sx = (lon) => 30 + (maxLon === minLon ? 170 : ((lon - minLon) / (maxLon - minLon)) * 340);
  const sy = (lat) => 150 - (maxLat === minLat ? 60 : ((lat - minLat) / (maxLat - minLat)) * 120);
  for (const c of located) {
    const g = document.createElementNS('http://www.w3.org/2000/svg', 'g');
    g.setAttribute('class', `pin ${c.state}`);
    g.innerHTML = `<circle cx="${sx(c.lon)}" cy="${sy(c.lat)}" r="7"/><text x="${sx(c.lon) + 10}" y="${sy(c.lat) + 4}"></text>`;
    g.querySelector('text').textContent = c.name || c.camera_id;
    svg.appendChild(g);
  }
}

async function loadCameras() {
  state.cameras = await api('/cameras');
  renderCameras();
  renderCountsFor(state.cameras);
}

// ---------- incidents ----------
function incidentFromEvent(e) {
  const prev = state.incidents.get(e.incident_id) || {};
  const at = Date.parse(e.occurred_at);
  return {
    ...prev,
    incident_id: e.incident_id, site_id: e.site_id, camera_id: e.camera_id, kind: e.kind, severity: e.severity,
    state: prev.state === 'ended' ? 'ended' : e.state, zone_id: e.zone_id, measures: e.measures,
    started_ms: prev.started_ms ?? at, updated_ms: at,
    snapshot_id: prev.snapshot_id || e.snapshot?.snapshot_id, snapshot_available: prev.snapshot_available || !!e.snapshot,
    // A clip-only update (the clip arrived after the start) changes nothing else.
    ...(e.clip ? { measures: prev.measures ?? e.measures, clip_id: prev.clip_id || e.clip.clip_id, clip_available: true,
      clip_duration_ms: e.clip.duration_ms } : {}),
    related_count: Math.max(prev.related_count || 0, e.related?.length || 0),
  };
}

function measuresText(m) {
  const parts = [];
  if (m?.duration_ms != null) parts.push(`${t('duration')} ${(m.duration_ms / 1000).toFixed(0)} s`);
  if (m?.speed_kmh != null) parts.push(`${t('speed')} ${m.speed_kmh.toFixed(0)} km/h` + (m.limit_kmh ? ` / ${m.limit_kmh}` : ''));
  if (m?.occupancy != null) parts.push(`${t('occupancy')} ${m.occupancy.toFixed(1)}`);
  if (m?.distance_px != null) parts.push(`${m.distance_px.toFixed(0)} px`);
  if (m?.passed_by != null) parts.push(`${t('passed_by')} ${m.passed_by}`);
  if (m?.red_for_ms != null) parts.push(`${t('red_for')} ${(m.red_for_ms / 1000).toFixed(1)} s`);
  return parts.join(' · ');
}

function renderIncidents() {
  const feed = $('#incident-feed');
  const hideResolved = $('#hide-resolved').checked;
  const items = [...state.incidents.values()]
    .filter((i) => !(hideResolved && i.resolved_ms))
    .sort((a, b) => b.started_ms - a.started_ms);
  $('#incident-count').textContent = items.length ? `(${items.length})` : '';
  feed.innerHTML = items.length ? '' : `<li class="empty">${t('no_incidents')}</li>`;
  for (const i of items) {
    const li = $('#incident-tpl').content.firstElementChild.cloneNode(true);
    li.dataset.incident = i.incident_id;
    li.classList.add(i.severity);
    if (i.acknowledged_ms) li.classList.add('acknowledged');
    if (i.resolved_ms) li.classList.add('resolved');
    const img = li.querySelector('.thumb');
    if (i.snapshot_id) {
      img.src = `/api/v1/snapshots/${encodeURIComponent(i.snapshot_id)}`;
      img.onerror = () => { img.classList.add('missing'); };
      img.onclick = () => window.open(img.src, '_blank');
    } else {
      img.classList.add('missing');
    }
    li.querySelector('.kind').textContent = t(i.kind);
    li.querySelector('.sev').textContent = t(i.severity);
    li.querySelector('.state').textContent = t(i.state);
    li.querySelector('.meta').textContent = `${i.camera_id}${i.zone_id ? ' / ' + i.zone_id : ''} · ${fmtTime(i.started_ms)}`;
    li.querySelector('.measures').textContent = measuresText(i.measures);
    const wf = [];
    if (i.acknowledged_by) wf.push(`${t('acknowledged_by')} ${i.acknowledged_by}: ${i.acknowledge_note || ''}`);
    if (i.resolved_by) wf.push(`${t('resolved_by')} ${i.resolved_by}: ${i.resolve_note || ''}`);
    li.querySelector('.workflow').textContent = wf.join(' — ');
    li.querySelector('.ack').disabled = !!i.acknowledged_ms;
    li.querySelector('.resolve').disabled = !!i.resolved_ms;
    // Viewers read only: the workflow buttons are for operators and admins.
    if (!canAct()) { li.querySelector('.ack').classList.add('hidden'); li.querySelector('.resolve').classList.add('hidden'); }
    const clip = li.querySelector('.clip');
    clip.classList.toggle('hidden', !i.clip_id);
    clip.onclick = () => openDetail(i.incident_id);
    li.querySelector('.ack').onclick = () => workflow(i.incident_id, 'acknowledge', t('note_ack'));
    li.querySelector('.resolve').onclick = () => workflow(i.incident_id, 'resolve', t('note_resolve'));
    feed.appendChild(li);
  }
}

// The incident detail: its evidence clip (served by range requests; the session cookie
// authorises it, no secret in the URL) with a download link. Outside the feed, so a live
// update of the feed never interrupts the player.
function openDetail(id) {
  const i = state.incidents.get(id);
  if (!i) return;
  const box = $('#incident-detail');
  box.dataset.incident = id;
  box.querySelector('.kind').textContent = t(i.kind);
  box.querySelector('.sev').textContent = t(i.severity);
  box.querySelector('.state').textContent = t(i.state);
  box.querySelector('.meta').textContent = `${i.camera_id}${i.zone_id ? ' / ' + i.zone_id : ''} · ${fmtTime(i.started_ms)}` +
    (i.related_count ? ` · ${t('related')} ${i.related_count}` : '');
  box.querySelector('.measures').textContent = measuresText(i.measures);
  const player = $('#clip-player');
  const url = `/api/v1/clips/${encodeURIComponent(i.clip_id)}`;
  box.querySelector('.clip-missing').classList.toggle('hidden', !!i.clip_available);
  if (player.dataset.clip !== i.clip_id) {
    player.dataset.clip = i.clip_id;
    player.src = url;
  }
  $('#clip-download').href = url;
  $('#clip-download').setAttribute('download', `${i.camera_id}-${i.kind}-${i.incident_id}.mp4`);
  box.classList.remove('hidden');
  player.play().catch(() => {});
}

function closeDetail() {
  const player = $('#clip-player');
  player.pause();
  player.removeAttribute('src');
  delete player.dataset.clip;
  player.load();
  $('#incident-detail').classList.add('hidden');
}

async function workflow(id, step, promptText) {
  const note = window.prompt(promptText, '');
  if (note === null || !note.trim()) return;
  try {
    const updated = await api(`/incidents/${id}/${step}`, { method: 'POST', body: JSON.stringify({ note }) });
    state.incidents.set(id, updated);
    renderIncidents();
  } catch (e) {
    window.alert(e.message);
  }
}

async function loadIncidents() {
  for (const i of await api('/incidents?limit=100')) state.incidents.set(i.incident_id, i);
  renderIncidents();
}

// ---------- counts ----------
const countTimers = new Map();
function renderCountsFor(cameras) {
  for (const c of cameras) {
    if (!countTimers.has(c.camera_id)) countTimers.set(c.camera_id, null);
    refreshCounts(c.camera_id);
  }
}

function scheduleCounts(cameraId) {
  if (countTimers.get(cameraId)) return;
  countTimers.set(cameraId, setTimeout(() => { countTimers.set(cameraId, null); refreshCounts(cameraId); }, 1500));
}

async function refreshCounts(cameraId) {
  const rows = await api(`/counts?bucket=1m&camera=${encodeURIComponent(cameraId)}`);
  let box = document.querySelector(`.chart[data-camera="${cameraId}"]`);
  if (!box) {
    box = document.createElement('div');
    box.className = 'chart';
    box.dataset.camera = cameraId;
    $('#count-charts').appendChild(box);
  }
  const buckets = new Map();
  const classes = new Set();
  for (const r of rows) {
    const b = buckets.get(r.bucket_start_ms) || {};
    b[r.class] = (b[r.class] || 0) + r.count;
    buckets.set(r.bucket_start_ms, b);
    classes.add(r.class);
  }
  const keys = [...buckets.keys()].sort((a, b) => a - b).slice(-30);
  const max = Math.max(1, ...keys.map((k) => Object.values(buckets.get(k)).reduce((s, v) => s + v, 0)));
  const total = rows.reduce((s, r) => s + r.count, 0);
  const W = 600, H = 140, bw = keys.length ? Math.min(40, (W - 40) / keys.length - 4) : 0;
  let svg = `<svg viewBox="0 0 ${W} ${H + 20}" class="bars">`;
  keys.forEach((k, idx) => {
    let y = H;
    const x = 30 + idx * (bw + 4);
    for (const cls of [...classes].sort()) {
      const v = buckets.get(k)[cls] || 0;
      const h = (v / max) * (H - 10);
      y -= h;
      if (v) svg += `<rect x="${x}" y="${y}" width="${bw}" height="${h}" fill="${CLASS_COLORS[cls] || '#999'}"><title>${t(cls)}: ${v}</title></rect>`;
    }
    svg += `<text x="${x + bw / 2}" y="${H + 14}" text-anchor="middle">${new Date(k).toISOString().slice(11, 16)}</text>`;
  });
  svg += `<text x="2" y="12">${max}</text></svg>`;
  // Swatch colours go through element.style below: the CSP refuses style="" in markup.
  const legend = [...classes].sort().map((c) => `<span><i data-color="${CLASS_COLORS[c] || '#999'}"></i>${t(c)}</span>`).join('');
  const cam = state.cameras.find((c) => c.camera_id === cameraId);
  box.innerHTML = `<h3>${(cam && cam.name) || cameraId} <small>${total}</small></h3>` +
    (keys.length ? svg + `<div class="legend">${legend}</div>` : `<p class="empty">${t('no_counts')}</p>`);
  box.querySelectorAll('.legend i').forEach((i) => { i.style.background = i.dataset.color; });
}

// ---------- live ----------
function connectLive() {
  if (state.source) state.source.close();
  // Same origin: EventSource sends the session cookie.
  const src = new EventSource('/api/v1/stream');
  state.source = src;
  const live = $('#live');
  src.onopen = () => { live.className = 'pill on'; live.textContent = t('online'); };
  src.onerror = () => { live.className = 'pill off'; live.textContent = t('offline'); };
  src.addEventListener('incident', (m) => {
    const e = JSON.parse(m.data);
    state.incidents.set(e.incident_id, incidentFromEvent(e));
    renderIncidents();
  });
  src.addEventListener('camera_status', () => loadCameras());
  src.addEventListener('line_crossing', (m) => {
    const e = JSON.parse(m.data);
    if (!state.cameras.some((c) => c.camera_id === e.camera_id)) loadCameras(); else scheduleCounts(e.camera_id);
  });
  src.addEventListener('lagged', () => { loadIncidents(); loadCameras(); });
}

const canAct = () => !!state.user && (state.user.role === 'operator' || state.user.role === 'admin');

function showLogin(message) {
  $('#app').classList.add('hidden');
  $('#whoami').classList.add('hidden');
  $('#logout').classList.add('hidden');
  $('#login').classList.remove('hidden');
  $('#login-error').textContent = message || '';
  $('#login-name').focus();
}

function signedOut(message) {
  if (state.source) { state.source.close(); state.source = null; }
  if (state.refresh) { clearInterval(state.refresh); state.refresh = null; }
  state.user = null;
  state.cameras = [];
  state.incidents.clear();
  const live = $('#live');
  live.className = 'pill off'; live.textContent = t('offline');
  showLogin(message);
}

function renderWhoami() {
  const u = state.user;
  if (!u) return;
  $('#whoami').textContent = `${u.name} · ${t(u.role)}` + (u.sites ? ` · ${u.sites.join(', ')}` : '');
}

async function enter(user) {
  state.user = user;
  $('#login').classList.add('hidden');
  $('#login-error').textContent = '';
  $('#login-password').value = '';
  renderWhoami();
  $('#whoami').classList.remove('hidden');
  $('#logout').classList.remove('hidden');
  $('#app').classList.remove('hidden');
  try {
    await loadCameras();
    await loadIncidents();
  } catch (e) {
    if (e.status !== 401) $('#login-error').textContent = e.message;
    return;
  }
  connectLive();
  if (!state.refresh) state.refresh = setInterval(() => loadCameras().catch(() => {}), 15000);
}

async function signIn(name, password) {
  $('#login-error').textContent = '';
  try {
    const user = await api('/session', { method: 'POST', body: JSON.stringify({ name, password }) });
    await enter(user);
  } catch (e) {
    if (e.status === 401) $('#login-error').textContent = t('bad_login');
    else if (e.status === 429) $('#login-error').textContent = t('throttled').replace('{s}', e.retryAfter || '?');
    else $('#login-error').textContent = `${t('login_failed')} (${e.message})`;
  }
}

async function signOut() {
  try { await api('/session', { method: 'DELETE' }); } catch (_) { /* signed out anyway */ }
  signedOut('');
}

document.addEventListener('DOMContentLoaded', async () => {
  applyI18n();
  // Keys are for machines; older versions kept one here or in a #key= link: forget both.
  localStorage.removeItem('roadsight.key');
  if (location.hash.includes('key=')) history.replaceState(null, '', location.pathname);
  $('#lang').onclick = () => {
    state.lang = state.lang === 'vi' ? 'en' : 'vi';
    localStorage.setItem('roadsight.lang', state.lang);
    applyI18n(); renderWhoami(); renderCameras(); renderIncidents(); state.cameras.forEach((c) => refreshCounts(c.camera_id));
  };
  $('#hide-resolved').onchange = renderIncidents;
  $('#logout').onclick = signOut;
  $('#detail-close').onclick = closeDetail;
  $('#login-form').onsubmit = (ev) => {
    ev.preventDefault();
    signIn($('#login-name').value.trim(), $('#login-password').value);
  };
  let user = null;
  try { user = await api('/session'); } catch (_) { /* not signed in */ }
  if (user && user.kind === 'user') await enter(user); else showLogin('');
});
