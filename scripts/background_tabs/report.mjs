// report.md from results.json: `node scripts/background_tabs/report.mjs results/background-tabs/results.json`
// rewrites the report.md beside it (run.mjs calls renderReport itself).

import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const f0 = (x) => (x === null || x === undefined ? '–' : Math.round(x).toLocaleString('en-US'));
const f1 = (x) => (x === null || x === undefined ? '–' : (Math.round(x * 10) / 10).toLocaleString('en-US'));
const perMin = (x, minutes) => (minutes > 0 ? x / minutes : null);
const secs = (ms) => (ms === null || ms === undefined ? '–' : ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`);

export function renderReport(r) {
  const out = [];
  const p = (s = '') => out.push(s);
  p(`# ${r.title}`);
  p();
  p(`- command: \`${r.command}\` (from the repository root, after \`cargo build --release -p server\` and \`cd web && npm ci\`)`);
  p(`- date: ${r.date} → ${r.finished}`);
  p(`- commit: \`${r.commit}\` (branch \`${r.branch}\`)`);
  p(`- machine: ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.kernel}, ${r.machine.memory_gib} GiB; Node ${r.machine.node}, playwright-core ${r.playwright_core}`);
  p(`- browser: ${r.chromium.version}, ${r.headed ? `headed, in a window on Xvfb (DISPLAY ${r.display})` : 'new headless mode'}`);
  const s = r.settings;
  p(`- stages: visible ${s.visibleS} s, hidden ${s.hiddenS} s (split at ${s.hiddenSplitS} s), frozen ${s.frozenS} s (still hidden), back ${s.backS} s; busy feeds: one event every ${s.publishEveryMs} ms from the benchmark (\`POST /publish\`); quiet feeds: nothing published`);
  p(`- hidden: ${r.hidden_how}`);
  p(`- frozen: ${r.frozen_how}`);
  p();
  p('## Was the page really hidden, frozen, back?');
  p();
  p('What each page said about itself (`document.visibilityState`, read over CDP at each mark; `no answer` = the evaluation did not return within 3 s) and the lifecycle events it logged (`visibilitychange`, `freeze`, `resume`), with their time since the run started:');
  p();
  const t0 = r.boundaries[0].at;
  const ids = r.results.map((x) => x.id);
  p(`| page | ${r.boundaries.map((b) => b.name).join(' | ')} | events logged by the page |`);
  p(`|---|${r.boundaries.map(() => '---').join('|')}|---|`);
  for (const x of r.results) {
    const cells = r.boundaries.map((b) => {
      const st = b.pages[x.id];
      if (!st) return 'no answer';
      if (st.error) return 'error';
      return `${st.visibility}${st.hasFocus ? ', focus' : ''}${st.wasDiscarded ? ', discarded' : ''}`;
    });
    const ev = x.lifecycle
      .filter((l) => l.type !== 'start')
      .map((l) => `${l.type}${l.type === 'visibilitychange' ? `→${l.visibility}` : ''} @${((l.at - t0) / 1000).toFixed(1)} s`)
      .join('; ');
    p(`| ${x.variant} ${x.name} | ${cells.join(' | ')} | ${ev || '–'} |`);
  }
  p();
  p(`Marks (s since start): ${r.boundaries.map((b) => `${b.name} ${((b.at - t0) / 1000).toFixed(1)}`).join(', ')}.`);
  p();

  for (const variant of ['busy', 'quiet']) {
    p(`## ${variant === 'busy' ? `Busy feed (1 event / ${s.publishEveryMs / 1000} s)` : 'Quiet feed (no events)'}: per transport × stage`);
    p();
    p('Per minute of the stage. *req* = HTTP requests and WebSocket handshakes the server served for the page (`/stats`); *B↓* = bytes the server wrote to the page (heads, chunking, framing, heartbeats and pings included; `/stats` `bytes_written`); *B↑* = bytes Chromium sent on its sockets to that server (`ss` `bytes_sent`: request heads, WebSocket pongs, TCP-level nothing); *seg↑/seg↓* = TCP segments carrying data, Chromium → server / server → Chromium (`ss` `data_segs_out`/`data_segs_in`, each one a moment the radio would have to be up); *conn* = TCP connections Chromium opened in the stage (`ss`); *page req* = requests the page itself started (its log); *events* = published in the stage / received by the page in the stage (of those, received late: published in an earlier stage); *delay* = publish → the page had it, p50 / max.');
    p();
    p('| transport | stage | min | req/min | B↓/min | B↑/min | seg↑/min | seg↓/min | conn | page req/min | events pub / recv (late) | delay p50 / max |');
    p('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const x of r.results.filter((y) => y.variant === variant)) {
      for (const row of x.stages) {
        const m = row.minutes;
        const sv = row.server;
        const so = row.sockets;
        const pg = row.page;
        p(
          `| ${x.name} | ${row.stage} | ${f1(m)} | ${f1(perMin(sv.requests, m))} | ${f0(perMin(sv.bytes_written, m))} | ${f0(perMin(so.bytesSent, m))} | ${f1(perMin(so.dataSegsOut, m))} | ${f1(perMin(so.dataSegsIn, m))} | ${so.connectionsSeen} | ${f1(perMin(pg.requests_sent, m))} | ${pg.events_published} / ${pg.events_received} (${pg.received_late_from_earlier_stages}) | ${pg.delay_ms ? `${secs(pg.delay_ms.p50)} / ${secs(pg.delay_ms.max)}` : '–'} |`,
        );
      }
    }
    p();
  }

  p('## Coming back: events missed while frozen, and catching up');
  p();
  p('Busy feeds. *published while frozen*: events the benchmark published between freezing and unfreezing; *received while frozen*: of all events, those the page logged while frozen (by its own clock: an event handled while frozen would show here); *resumed after back*: events published while frozen that the page got after coming back; *caught up*: from unfreezing to the page holding the newest event published before it; *never*: events published (5 s before the end or earlier) the page never got; *how*: what the page and server logs say happened to the connection.');
  p();
  p('| transport | published while frozen | received while frozen | resumed after back | caught up | never | gaps | how |');
  p('|---|---:|---:|---:|---:|---:|---:|---|');
  for (const x of r.results.filter((y) => y.variant === 'busy')) {
    const c = x.catch_up;
    const back = x.stages.find((y) => y.stage === 'back');
    const frozen = x.stages.find((y) => y.stage === 'frozen');
    const gaps = x.stages.reduce((sum, y) => sum + y.page.gaps, 0);
    const how = [];
    if (frozen.server.requests) how.push(`${frozen.server.requests} request(s) served while frozen`);
    if (back.server.requests) how.push(`${back.server.requests} request(s) in the back stage`);
    const reconnects = x.states.filter((st) => st.state === 'retrying' && st.at >= frozen.from);
    if (reconnects.length) how.push(`reconnected: ${[...new Set(reconnects.map((st) => st.reason))].join('; ')}`);
    if (x.missed_notices.length) how.push(`${x.missed_notices.length} missed notice(s)`);
    p(`| ${x.name} | ${c.published_while_frozen} | ${c.received_while_frozen_by_page_clock} | ${c.resumed_after_back} | ${secs(c.caught_up_ms)} | ${c.never_received} | ${gaps} | ${how.join('; ') || 'same connection, nothing re-requested'} |`);
  }
  p();

  const probes = r.results.filter((y) => y.mode === 'probe');
  if (probes.length) {
    p('## Timer throttling as the pages saw it');
    p();
    p('A chain of nested `setTimeout(…, 1000)` in a page with no feed, alone and with a WebSocket open to `/ws/echo`: wake-ups per minute and the gap between wake-ups (p50 / max) per stage.');
    p();
    p('| probe | stage | wake-ups/min | gap p50 | gap max |');
    p('|---|---|---:|---:|---:|');
    for (const x of probes) {
      for (const row of x.stages) {
        p(`| ${x.name} | ${row.stage} | ${f1(perMin(row.page.timer_ticks, row.minutes))} | ${secs(row.page.timer_gap_ms?.p50)} | ${secs(row.page.timer_gap_ms?.max)} |`);
      }
    }
    p();
  }

  // When the 1-minute alignment (intensive wake-up throttling) began, from the wake-up logs.
  const hiddenAt = r.boundaries.find((b) => b.name === 'hidden')?.at;
  const frozenAt = r.boundaries.find((b) => b.name === 'frozen')?.at;
  if (hiddenAt && frozenAt) {
    p('## When the timers of a hidden page slowed down');
    p();
    p("From each page's own log of wake-ups while hidden (the probes' timer callbacks; the short polls' requests): the gaps between consecutive wake-ups before the first gap of 30 s or more, and when that first long gap ended, counted from the moment the page was hidden.");
    p();
    p('| page | gap p50 before | first gap ≥ 30 s ended at | gaps after it: p50 / max | wake-ups while hidden |');
    p('|---|---:|---:|---:|---:|');
    const median = (a) => (a.length ? [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] : null);
    for (const x of r.results.filter((y) => y.mode === 'probe' || y.transport === 'short-poll')) {
      const ts = (x.mode === 'probe' ? x.ticks : x.requests_log).filter((t) => t >= hiddenAt && t < frozenAt);
      const gaps = ts.slice(1).map((t, i) => [t - ts[i], t]);
      const k = gaps.findIndex(([d]) => d >= 30_000);
      const before = (k < 0 ? gaps : gaps.slice(0, k)).map(([d]) => d);
      const after = k < 0 ? [] : gaps.slice(k + 1).map(([d]) => d);
      p(`| ${x.variant} ${x.name} | ${secs(median(before))} | ${k < 0 ? 'never' : `${((gaps[k][1] - hiddenAt) / 1000).toFixed(1)} s`} | ${after.length ? `${secs(median(after))} / ${secs(Math.max(...after))}` : '–'} | ${ts.length} |`);
    }
    p();
  }

  const consoleLines = r.results.flatMap((x) => (x.console ?? []).map((c) => ({ ...c, page: `${x.variant} ${x.name}` })));
  if (consoleLines.length) {
    p('## Console messages of the pages');
    p();
    p('| page | s since start | type | text |');
    p('|---|---:|---|---|');
    for (const c of consoleLines) p(`| ${c.page} | ${((c.at - t0) / 1000).toFixed(1)} | ${c.type} | ${c.text.replaceAll('|', '\\|')} |`);
    p();
  }

  p('## Chromium command line');
  p();
  p('This run (`/proc/<pid>/cmdline` of the browser process; the Debian wrapper adds its own switches first):');
  p();
  p('```');
  p(r.chromium.cmdline.join(' \\\n  '));
  p('```');
  p();
  p(`What Playwright's own \`chromium.launch({headless: true})\` runs (read the same way), of which this run leaves out ${r.chromium.removed.map((a) => `\`${a}\``).join(', ')} (and Playwright's pipe, \`--enable-automation\`-style and feature switches that do not touch a page's life):`);
  p();
  p('```');
  p(r.chromium.playwright_default_cmdline.join(' \\\n  '));
  p('```');
  p();
  return `${out.join('\n')}\n`;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const file = process.argv[2] ?? 'results/background-tabs/results.json';
  const report = JSON.parse(readFileSync(file, 'utf8'));
  writeFileSync(path.join(path.dirname(file), 'report.md'), renderReport(report));
}
