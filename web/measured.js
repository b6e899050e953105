// The guidance under "What each one costs", tied to a measured run.
//
// The trade-offs on the page are general; the load generator measures them. This reads the run
// the README quotes (`results/reference/`, else the newest report the server lists under
// `/results/`) and shows, under each transport's guidance, what that run measured for it, and the
// report's per-scenario recommendations with their reasons when it made any (a run with
// `loadgen --scenario …`); when it made none, those of the newest scenario run the server lists
// (`decision.json`, every scenario's recommendation). Without either, a sentence saying so and
// how to make them, never an empty box; a server with no reports gets a sentence saying where they would come from.
// The figures are the report's own (`report.json`), linked, never recomputed here.

import { formatBytes, formatMicros, formatRatio } from './stats.js';

/** The report the README quotes, preferred over the newest when the server lists it. */
export const PREFERRED_REPORT = 'reference';

/** `GET /results/index.json`: the reports the server lists, newest first; `[]` when none or no answer. */
export async function loadReportIndex() {
  const index = await getJson('results/index.json');
  return Array.isArray(index)
    ? index.filter((r) => typeof r?.name === 'string' && (r.html || r.md || r.decision))
    : [];
}

/**
 * Fills `panel` and each `[data-topic]` article of the trade-offs from one of `reports` (see
 * `loadReportIndex`); resolves to `{name, figures: {dataBytes, clients, rate}}` for the report
 * shown (figures null when it has no per-transport results), or null when there is none.
 * @param {{panel: HTMLElement, titles: Record<string,string>, reports: object[]}} o
 */
export async function showMeasured({ panel, titles, reports }) {
  const withReport = reports.filter((r) => r.html || r.md);
  const chosen = withReport.find((r) => r.name === PREFERRED_REPORT) ?? withReport[0];
  if (!chosen) {
    panel.replaceChildren(
      paragraph(
        'No load-generator report on this server to tie this guidance to: the server serves the reports under ' +
          'its --results-dir (results/ by default) at /results/, and loadgen writes one per run.',
      ),
    );
    return null;
  }
  const base = `results/${encodeURIComponent(chosen.name)}/`;
  const human = chosen.html ? `${base}report.html` : `${base}report.md`;
  // Asked for only when the index lists it: a 404 would be an error in the console.
  const report = chosen.json ? await getJson(`${base}report.json`) : null;
  const head = document.createElement('p');
  head.className = 'measured-head';
  if (!report || typeof report !== 'object') {
    head.append(
      'Measured: ',
      link(human, `results/${chosen.name}`),
      chosen.json ? ' (its report.json did not load, so only the link).' : ' (a report without report.json, so only the link).',
    );
    panel.replaceChildren(head);
    return { name: chosen.name, figures: null };
  }

  const transports = report.transports && typeof report.transports === 'object' ? report.transports : {};
  const first = Object.values(transports)[0];
  const figures = first
    ? { dataBytes: first.data_bytes_per_event ?? null, clients: first.clients, rate: first.rate }
    : null;
  head.append(
    'Measured by the load generator in ',
    link(human, `results/${chosen.name}`),
    ' (',
    link(`${base}report.json`, 'report.json'),
    ')',
    figures
      ? `: ${figures.clients} clients per transport, ${figures.rate} events/s, ` +
          `${figures.dataBytes === null ? 'its' : formatBytes(figures.dataBytes)} of data per event, on loopback.`
      : '.',
  );
  const parts = [head];
  const recommendations = Array.isArray(report.recommendations) ? report.recommendations : [];
  // Scenario runs (`decision.json`), newest first, asked for only when the index lists one.
  const decided = [];
  if (recommendations.length === 0) {
    for (const entry of reports.filter((r) => r.decision)) {
      const decision = await getJson(`results/${encodeURIComponent(entry.name)}/decision.json`);
      if (Array.isArray(decision?.recommendations) && decision.recommendations.length > 0) {
        decided.push({ entry, decision });
        break;
      }
    }
  }
  if (recommendations.length > 0) {
    for (const r of recommendations) parts.push(recommendation(r, titles));
  } else if (decided.length > 0) {
    // The quoted run ranks nothing, but a scenario run on this server did: its decision.
    const { entry, decision } = decided[0];
    const dir = `results/${encodeURIComponent(entry.name)}/`;
    const from = paragraph('Recommended per scenario by ');
    from.append(
      code('loadgen --scenario all'),
      ' in ',
      link(`${dir}decision.md`, `results/${entry.name}/decision.md`),
      ', every scenario its own repeated run:',
    );
    from.dataset.field = 'decision';
    parts.push(from);
    for (const r of decision.recommendations) parts.push(recommendation(r, titles));
  } else {
    const none = paragraph('This run made no recommendation per scenario (it ran without ');
    none.append(
      code('--scenario'),
      '; ',
      code('loadgen --scenario all'),
      ' ranks the four transports for each named use). What it measured for each transport is under its ' +
        'heading; its conclusions are in the report.',
    );
    none.dataset.field = 'no-recommendation';
    parts.push(none);
  }
  panel.replaceChildren(...parts);

  for (const article of document.querySelectorAll('.tradeoff-grid [data-topic]')) {
    const t = transports[article.dataset.topic];
    article.querySelector('.measured-figures')?.remove();
    if (!t) continue;
    const p = document.createElement('p');
    p.className = 'measured-figures';
    p.dataset.field = 'measured';
    p.append(link(human, `Measured (${chosen.name})`), `: ${transportFigures(t)}`);
    article.append(p);
  }
  return { name: chosen.name, figures };
}

/** "p50 1.04 ms, p99 2.04 ms · 436 B per event · 1.01 requests per event", medians over the runs. */
export function transportFigures(t) {
  const median = (key, fallback) => t.spread?.[key]?.median ?? fallback;
  const parts = [];
  const p50 = median('latency_p50_us', t.latency_us?.p50);
  const p99 = median('latency_p99_us', t.latency_us?.p99);
  if (p50 != null && p99 != null) parts.push(`latency p50 ${formatMicros(p50)}, p99 ${formatMicros(p99)}`);
  const bytes = median('bytes_per_event', t.bytes_per_event);
  if (bytes != null) parts.push(`${formatBytes(bytes)} per event (both ways)`);
  const requests = median('requests_per_event', t.requests_per_event);
  if (requests != null) parts.push(`${formatRatio(requests)} requests per event`);
  const runs = t.spread?.runs;
  return parts.join(' · ') + (runs > 1 ? ` (median of ${runs} runs)` : '');
}

function recommendation(r, titles) {
  const box = document.createElement('article');
  box.className = 'recommendation';
  box.dataset.scenario = String(r.scenario);
  const h = document.createElement('h3');
  h.textContent = `Recommended for ${r.scenario}: ${r.summary}`;
  const needs = paragraph(`Requirements: ${r.requirements}.`);
  const list = document.createElement('ol');
  for (const x of Array.isArray(r.ranking) ? r.ranking : []) {
    const li = document.createElement('li');
    li.dataset.transport = x.transport;
    const name = document.createElement('strong');
    name.textContent = titles[x.transport] ?? x.transport;
    li.append(name, ` (rank ${x.rank}${x.meets_requirements ? '' : ', misses the requirements'}): ${x.reason}`);
    list.append(li);
  }
  box.append(h, needs, list);
  return box;
}

async function getJson(url) {
  try {
    const res = await fetch(url, { cache: 'no-store' });
    return res.ok ? await res.json() : null;
  } catch {
    return null;
  }
}

function link(href, text) {
  const a = document.createElement('a');
  a.href = href;
  a.textContent = text;
  a.target = '_blank';
  a.rel = 'noopener';
  return a;
}

function code(text) {
  const c = document.createElement('code');
  c.textContent = text;
  return c;
}

function paragraph(text) {
  const p = document.createElement('p');
  p.textContent = text;
  return p;
}
