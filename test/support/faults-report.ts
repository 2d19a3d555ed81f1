/**
 * Numbers from the fault-injection suite, one row per scenario: collected while the scenarios run,
 * then printed as a table on stdout and written to test-results/faults.json (gitignored), so the
 * closing note of a run can quote them. Plain module, no test-framework imports.
 *
 * Invariant: a row is recorded before the scenario asserts, so a failing scenario still shows
 * the numbers that made it fail.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface FaultsRow {
  scenario: string;
  /** Cycles run (the faulty ones and the ones that converged after the faults stopped). */
  cycles: number;
  /** TeamViewer matches what Entra says once the faults stopped. */
  converged: boolean;
  /** Extra TeamViewer users sharing a userName (case-insensitive) with another one. */
  duplicates: number;
  /**
   * Creates TeamViewer refused with 409 because the userName exists: a create sent again for a
   * user that had landed. TeamViewer's (and the emulator's) uniqueness check turns these into
   * relinks; against a server without it they would be duplicates.
   */
  conflicts: number;
  /** Entitled users made inactive, plus TeamViewer users tvsync does not manage that changed. */
  wrongDeactivations: number;
  /** POST/PUT/PATCH/DELETE requests TeamViewer received (answered or not). */
  teamViewerWrites: number;
  /** Retries the TeamViewer client made (its own stats), or null when it ran in a child process. */
  retries: number | null;
  /** Requests the emulators answered with an injected or provoked fault (403/429/5xx/401/reset). */
  faultAnswers: number;
  /** Top-level HTTP requests Microsoft Graph received (a $batch counts once). */
  graphRequests: number;
  /** Failure emails sent, by what they were about (e.g. quarantine:Unauthorized, staged, recovered). */
  emails: Record<string, number>;
  durationMs: number;
  /** Anything a reader of the table needs to know (e.g. what was measured besides the columns). */
  notes?: string;
}

export interface FaultsReport {
  add(row: FaultsRow): void;
  rows(): readonly FaultsRow[];
  /** The rows as a fixed-width text table. */
  table(): string;
  /** Writes { generatedAt, rows } as JSON; returns the file written. */
  write(file?: string): string;
}

const COLUMNS: Array<[string, (r: FaultsRow) => string]> = [
  ['scenario', (r) => r.scenario],
  ['cycles', (r) => String(r.cycles)],
  ['converged', (r) => (r.converged ? 'yes' : 'NO')],
  ['duplicates', (r) => String(r.duplicates)],
  ['409s', (r) => String(r.conflicts)],
  ['wrong deact.', (r) => String(r.wrongDeactivations)],
  ['TV writes', (r) => String(r.teamViewerWrites)],
  ['retries', (r) => (r.retries === null ? '-' : String(r.retries))],
  ['fault answers', (r) => String(r.faultAnswers)],
  ['Graph requests', (r) => String(r.graphRequests)],
  ['emails', (r) => Object.entries(r.emails).map(([k, n]) => `${k}=${n}`).join(' ') || '-'],
  ['duration', (r) => `${(r.durationMs / 1000).toFixed(1)} s`],
];

/** The repository root, from the sources (test/support) or the build (dist/test/support). */
function repoRoot(): string {
  const candidates = [path.resolve(__dirname, '..', '..'), path.resolve(__dirname, '..', '..', '..')];
  return candidates.find((dir) => fs.existsSync(path.join(dir, 'package.json'))) ?? process.cwd();
}

export function createFaultsReport(): FaultsReport {
  const rows: FaultsRow[] = [];
  return {
    add(row) {
      rows.push(row);
    },
    rows: () => rows,
    table() {
      const cells = rows.map((r) => COLUMNS.map(([, cell]) => cell(r)));
      const widths = COLUMNS.map(([title], i) => Math.max(title.length, ...cells.map((c) => c[i].length)));
      const line = (values: string[]) => values.map((v, i) => (i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ');
      const notes = rows.filter((r) => r.notes).map((r) => `  ${r.scenario}: ${r.notes}`);
      return [
        line(COLUMNS.map(([title]) => title)),
        widths.map((w) => '-'.repeat(w)).join('  '),
        ...cells.map(line),
        ...(notes.length ? ['', 'notes:', ...notes] : []),
      ].join('\n');
    },
    write(file = path.join(repoRoot(), 'test-results', 'faults.json')) {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, `${JSON.stringify({ generatedAt: new Date().toISOString(), rows }, null, 2)}\n`);
      return file;
    },
  };
}
