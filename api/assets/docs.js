// The API docs page, rendered from /api/v1/openapi.json (a file of its own: the
// Content-Security-Policy allows no inline script).
'use strict';

fetch('/api/v1/openapi.json').then(r => r.json()).then(doc => {
  const esc = s => String(s ?? '').replace(/[&<>]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;'}[c]));
  let html = `<p>${esc(doc.info.description)}</p>`;
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      html += `<section class="op"><h2><span class="method ${method}">${method.toUpperCase()}</span> <code>${esc(path)}</code></h2>`;
      html += `<p>${esc(op.description || op.summary || '')}</p>`;
      if (op.parameters?.length) {
        html += '<table><tr><th>parameter</th><th>in</th><th>description</th></tr>';
        for (const p of op.parameters) html += `<tr><td><code>${esc(p.name)}</code></td><td>${esc(p.in)}</td><td>${esc(p.description)}</td></tr>`;
        html += '</table>';
      }
      html += '<p class="codes">' + Object.keys(op.responses || {}).map(c => `<span>${c}</span>`).join(' ') + '</p></section>';
    }
  }
  html += '<h2>Schemas</h2><ul>' + Object.keys(doc.components.schemas).map(s => `<li><code>${esc(s)}</code></li>`).join('') + '</ul>';
  document.getElementById('docs').innerHTML = html;
});
