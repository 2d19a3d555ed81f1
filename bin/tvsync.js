#!/usr/bin/env node
'use strict';
// Thin launcher: the CLI lives in shared/cli.ts and is compiled by `npm ci` (prepare) or `npm run build`.
require('../dist/shared/cli.js').main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { console.error(err && err.message ? err.message : String(err)); process.exitCode = 1; },
);
