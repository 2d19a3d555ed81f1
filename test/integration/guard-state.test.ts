/**
 * The guard's id sets in a real Table Storage (Azurite): thousands of Entra object ids stored
 * whole across rows, a set with a chunk missing refused instead of read short, and sets nobody
 * names any more deleted (at once by the writer that stopped naming them, after an hour when
 * their writer never named them).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryLogger } from '../../shared/log';
import { StateStore } from '../../shared/state/store';
import { tableClient } from '../../shared/state/target';
import { EMPTY_GUARD_STATE, GUARD_KEY, type GuardState } from '../../shared/sync/guard';
import { allowStaged, commitGuard, readGuard, readIds } from '../../shared/sync/guard-state';
import { startAzurite, type Azurite } from '../support/azurite';

let azurite: Azurite;
let n = 0;
const open = async () => {
  const prefix = `guard${++n}`;
  const target = { kind: 'connectionString' as const, connectionString: azurite.connectionString };
  return { store: await StateStore.open(target, { tablePrefix: prefix }), meta: tableClient(target, `${prefix}Meta`) };
};
const guid = (i: number) => `0000000a-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
const ids = (count: number, from = 1) => Array.from({ length: count }, (_, i) => guid(from + i));

beforeAll(async () => {
  azurite = await startAzurite();
});
afterAll(async () => {
  await azurite?.stop();
});

describe("the guard's id sets", () => {
  it('When 5,000 held users are stored, then they span several rows and read back whole', async () => {
    const { store, meta } = await open();
    const setId = store.newIdSetId();
    await store.putIdSet(setId, ids(5_000));
    const rows: string[] = [];
    for await (const row of meta.listEntities({ queryOptions: { filter: `PartitionKey eq 'idset'` } })) rows.push(String(row.rowKey));
    expect(rows.length).toBeGreaterThan(1);
    expect(await readIds(store, setId, 5_000)).toEqual(new Set(ids(5_000)));
  });

  it('When a chunk of a set is missing, then reading it fails as corrupt instead of returning fewer users', async () => {
    const { store, meta } = await open();
    const setId = store.newIdSetId();
    await store.putIdSet(setId, ids(3_000));
    await meta.deleteEntity('idset', `${setId}_000001`);
    await expect(store.getIdSet(setId)).rejects.toMatchObject({ code: 'STATE_CORRUPT' });
    await expect(readIds(store, store.newIdSetId())).rejects.toMatchObject({ code: 'STATE_NOT_FOUND' });
  });

  it('When the guard stops naming a set, then that set is deleted; an unnamed set is swept once an hour old, not before', async () => {
    const { store } = await open();
    const logger = memoryLogger();
    const named = store.newIdSetId();
    const abandoned = store.newIdSetId(new Date(Date.now() - 2 * 60 * 60_000));
    const young = store.newIdSetId();
    for (const setId of [named, abandoned, young]) await store.putIdSet(setId, ids(10));
    const held: GuardState = { ...EMPTY_GUARD_STATE, staged: { reason: 'TooManyDeactivations', message: 'm', count: 10, limit: 5, since: 's', cycleId: 'c', sample: [], setId: named } };
    const etag = await store.putMeta(GUARD_KEY, held, null);

    await commitGuard(store, { previous: held, next: { ...held, staged: null }, etag }, logger);
    expect((await store.listIdSets()).sort()).toEqual([young]);
  });

  it('When an admin allows while an earlier allowance is not yet fully applied, then the new allowance covers both sets and nothing else', async () => {
    const { store } = await open();
    const logger = memoryLogger();
    const earlier = store.newIdSetId();
    const staged = store.newIdSetId();
    await store.putIdSet(earlier, ids(3, 1));
    await store.putIdSet(staged, ids(4, 101));
    await store.putMeta<GuardState>(GUARD_KEY, {
      staged: { reason: 'TooManyDeactivations', message: 'm', count: 4, limit: 2, since: 's', cycleId: 'c2', sample: [], setId: staged, inScope: 90 },
      allowance: { grantedAt: 'g', by: 'bob', setId: earlier, count: 3, stagedSetId: 'gone' },
      baselineInScope: 90,
    }, null);

    const allowed = await allowStaged(store, 'alice', logger);
    const { value } = await readGuard(store);

    expect(allowed?.count).toBe(4);
    expect(value.allowance).toMatchObject({ by: 'alice', count: 7, stagedSetId: staged, reviewedInScope: 90 });
    expect(await readIds(store, value.allowance!.setId!, 7)).toEqual(new Set([...ids(3, 1), ...ids(4, 101)]));
    expect((await store.listIdSets()).sort()).toEqual([staged, value.allowance!.setId!].sort());
  });

  it('When deactivations were staged by an older version (no users recorded), then allow-deactivations refuses and says what to do', async () => {
    const { store } = await open();
    await store.putMeta<GuardState>(GUARD_KEY, { staged: { reason: 'SuspiciousRead', message: 'm', count: 60, limit: 500, since: 's', cycleId: 'c', sample: [] }, allowance: null, baselineImported: 100 }, null);
    await expect(allowStaged(store, 'alice', memoryLogger())).rejects.toMatchObject({ code: 'GUARD_SET_NOT_RECORDED', message: expect.stringMatching(/run "tvsync sync"/) });
    expect((await readGuard(store)).value.allowance).toBeNull();
  });
});
