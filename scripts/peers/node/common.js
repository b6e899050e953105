'use strict';
// What the Node peers share: the command line, the listening line feedlab's tools wait for,
// the publish body's size limit, and the stats every peer answers at GET /peer/stats.

const fs = require('node:fs');
const path = require('node:path');

/** Largest publish body accepted (bytes): a bigger one gets 413. */
const MAX_BODY = 1 << 20;

/** Channel ids: what loadgen names them (`feedlab-<ms>-<phase>`), and nothing else. */
const CHANNEL = /^[A-Za-z0-9_-]{1,100}$/;

/** `--name value` pairs into an object of defaults (numbers stay numbers). */
function options(defaults) {
  const out = { ...defaults };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '').replace(/-/g, '_');
    if (!(key in defaults) || i + 1 >= argv.length) {
      console.error(`unknown or incomplete option ${argv[i]} (known: ${Object.keys(defaults).join(', ')})`);
      process.exit(2);
    }
    out[key] = typeof defaults[key] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
  }
  return out;
}

/** The versions of the packages this peer runs, from their own package.json files. */
function versions(names) {
  const out = { node: process.versions.node };
  for (const name of names) {
    try {
      const meta = path.join(__dirname, 'node_modules', name, 'package.json');
      out[name] = JSON.parse(fs.readFileSync(meta, 'utf8')).version;
    } catch {
      out[name] = null;
    }
  }
  return out;
}

/** The first line on stdout: `feedlab listening on http://ADDR/` (what start_server and the
 * test kit wait for). */
function listening(host, port) {
  process.stdout.write(`feedlab listening on http://${host}:${port}/\n`);
}

/** Stops on SIGTERM and SIGINT (the scripts stop peers by PID). */
function stopOn(close) {
  for (const sig of ['SIGTERM', 'SIGINT']) {
    process.on(sig, () => {
      close();
      process.exit(0);
    });
  }
}

/** The SSE record feedlab's server writes for event `seq` (`id: N\ndata: <body>\n\n`). */
function sseRecord(seq, body) {
  return Buffer.concat([Buffer.from(`id: ${seq}\ndata: `), body, Buffer.from('\n\n')]);
}

module.exports = { MAX_BODY, CHANNEL, options, versions, listening, stopOn, sseRecord, path };
