import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { printedPart, writeReportJson } from '../../shared/cli';
import { emptyCounts, type ActionReport } from '../../shared/domain/model';
import type { CycleReport } from '../../shared/sync/cycle';
import { terminalJson } from '../../shared/text-safety';

function report(actions: ActionReport[]): CycleReport {
  return { cycleId: 'c1', kind: 'initial', dryRun: false, result: 'succeeded', startedAt: '2026-12-02T10:00:00.000Z', finishedAt: '2026-12-02T10:01:00.000Z', imported: actions.length, counts: emptyCounts(), actions };
}

function action(i: number, status: ActionReport['status'] = 'success'): ActionReport {
  return { kind: 'create', status, entraId: `id-${i}`, userPrincipalName: `user.${i}@contoso.example\u001b]8;;http://evil\u0007`, teamViewerId: `u${i}`, changes: [{ attribute: 'displayName', old: null, new: `User ${i}` }] };
}

async function written(r: CycleReport, slice?: number): Promise<{ text: string; writes: number }> {
  const out = new PassThrough();
  let text = '';
  let writes = 0;
  out.on('data', (chunk: Buffer) => { text += chunk.toString(); writes++; });
  await writeReportJson(out, r, slice);
  return { text, writes };
}

describe('sync --json, written in slices', () => {
  it('When a report holds more actions than a slice, then the output parses to the same report, terminal-safe, in several writes', async () => {
    const r = report(Array.from({ length: 1234 }, (_, i) => action(i)));
    const { text, writes } = await written(r, 500);
    expect(JSON.parse(text)).toEqual(r);
    expect(JSON.parse(text)).toEqual(JSON.parse(terminalJson(r)));
    expect(text).not.toMatch(/[\u001b\u0007]/);
    expect(writes).toBeGreaterThanOrEqual(4);
  });

  it('When a report has no actions or exactly one slice, then the output still parses to it', async () => {
    for (const r of [report([]), report([action(1)]), report(Array.from({ length: 500 }, (_, i) => action(i)))]) {
      expect(JSON.parse((await written(r, 500)).text)).toEqual(r);
    }
  });

  it('When the reader is slow, then the next slice waits for it: no more than a slice is ever queued', async () => {
    const r = report(Array.from({ length: 3000 }, (_, i) => action(i)));
    const out = new PassThrough({ highWaterMark: 1024 });
    let queuedMost = 0;
    let text = '';
    const reading = (async () => {
      for await (const chunk of out) {
        queuedMost = Math.max(queuedMost, out.writableLength);
        text += String(chunk);
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    })();
    await writeReportJson(out, r, 100);
    out.end();
    await reading;
    expect(JSON.parse(text)).toEqual(r);
    // One slice of 100 actions is about 30 KB; without waiting, all 3,000 (about 1 MB) would queue.
    expect(queuedMost).toBeLessThan(100_000);
  });

  it('When the stream closes while a slice waits, then writing ends instead of hanging', async () => {
    const out = new PassThrough({ highWaterMark: 16 });
    const writing = writeReportJson(out, report(Array.from({ length: 50 }, (_, i) => action(i))), 10);
    out.destroy();
    await expect(writing).resolves.toBeUndefined();
  });
});

describe('the printed part of a report', () => {
  it('When most actions are skips, then only what the text shows is kept, and every list it counts is whole', () => {
    const actions = [action(1), action(2, 'staged'), action(3, 'failure'), ...Array.from({ length: 50 }, (_, i) => action(10 + i, 'skipped'))];
    const part = printedPart(report(actions));
    expect(part.actions.map((a) => a.entraId)).toEqual(['id-1', 'id-2', 'id-3']);
  });
});
