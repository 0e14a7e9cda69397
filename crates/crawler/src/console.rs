//! The console page: live counters of a running crawl in a browser, served
//! at `/` next to `/status` (by `hyperscale crawler crawl --admin-bind` and
//! by every `crawler serve` node). One static page that polls `/status`
//! once a second and computes rates from the deltas, so the server does no
//! rendering and the counters are the same ones `/metrics` exports.

/// The page (HTML + a few lines of script; no external assets).
pub const CONSOLE_HTML: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>hyperscale crawler</title>
<style>
body{font:14px system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.3em}table{border-collapse:collapse}
td{padding:.25em 1em;border-bottom:1px solid #ddd}td.n{text-align:right;font-variant-numeric:tabular-nums}
#err{color:#b00}
</style></head><body>
<h1>hyperscale crawler</h1>
<p id="err"></p>
<table id="t"></table>
<script>
let last = null;
function row(k, v) { return `<tr><td>${k}</td><td class="n">${v}</td></tr>`; }
function kinds(m) { const e = Object.entries(m || {}); return e.length ? e.map(([k, v]) => `${k}=${v}`).join(", ") : "0"; }
async function tick() {
  try {
    const j = await (await fetch("status", {cache: "no-store"})).json();
    const s = j.stats || j, now = Date.now();
    const rate = last ? ((s.pages - last.pages) * 1000 / (now - last.at)).toFixed(1) : "-";
    last = {pages: s.pages, at: now};
    document.getElementById("t").innerHTML =
      (j.state ? row("state", j.state) : "") +
      row("pages (HTTP answers)", s.pages) + row("pages/s", rate) +
      row("body MB", (s.bytes / 1e6).toFixed(1)) +
      row("frontier (queued URLs)", s.frontier) +
      row("hosts active / queued", `${s.hosts_active} / ${s.hosts_queued}`) +
      row("robots.txt fetched", s.robots_fetched) + row("redirects", s.redirects) +
      row("forwarded to other nodes", s.forwarded || 0) +
      row("errors", kinds(s.errors)) + row("responses", kinds(s.statuses)) +
      row("duplicates", kinds(s.duplicates)) + row("revisits", kinds(s.revisits)) +
      row("trap drops", kinds(s.traps)) + row("skipped", kinds(s.skipped));
    document.getElementById("err").textContent = "";
  } catch (e) {
    document.getElementById("err").textContent = "status unavailable: " + e;
  }
}
tick(); setInterval(tick, 1000);
</script></body></html>
"#;
