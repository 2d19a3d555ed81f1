/**
 * Group state against a real Azurite: group links (with create intents), and the members tvsync
 * wrote, in entity-group transactions.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StateError } from '../../shared/state/errors';
import { GroupStateStore } from '../../shared/state/groups';
import { tableClient, type ClientTuning, type PipelinePolicy, type StorageTarget } from '../../shared/state/target';
import type { GroupLink } from '../../shared/domain/group-model';
import { startAzurite, type Azurite } from '../support/azurite';

const FAST: ClientTuning = { retry: { maxRetries: 1, retryDelayInMs: 10, maxRetryDelayInMs: 20 }, requestTimeoutMs: 10_000 };
const HELPDESK = '0a1b2c3d-0000-4000-8000-000000000001';
const FIELD = '0a1b2c3d-0000-4000-8000-000000000002';

let azurite: Azurite;
let target: StorageTarget;
let tables = 0;

beforeAll(async () => {
  azurite = await startAzurite();
  target = { kind: 'connectionString', connectionString: azurite.connectionString };
});
afterAll(async () => {
  await azurite?.stop();
});

/** Counts the HTTP requests sent, by kind: entity-group transactions and the rest. */
function requestCounter(): PipelinePolicy & { batches: number; other: number } {
  const counter = {
    name: 'requestCounter',
    batches: 0,
    other: 0,
    async sendRequest(request: Parameters<PipelinePolicy['sendRequest']>[0], next: Parameters<PipelinePolicy['sendRequest']>[1]) {
      if (new URL(request.url).pathname.endsWith('$batch')) counter.batches++;
      else counter.other++;
      return next(request);
    },
  };
  return counter;
}

async function freshStore(policies: PipelinePolicy[] = []): Promise<{ store: GroupStateStore; prefix: string }> {
  const prefix = `g${++tables}`;
  return { store: await GroupStateStore.open(target, { tablePrefix: prefix, tuning: { ...FAST, policies } }), prefix };
}

function link(entraGroupId: string, overrides: Partial<GroupLink> = {}): GroupLink {
  return {
    entraGroupId,
    teamViewerGroupId: '10000042',
    name: 'Entra - Helpdesk',
    origin: 'created',
    role: { id: 'aaaaaaaa-0000-4000-8000-000000000001', name: 'Support agent' },
    createdAt: '2026-11-28T21:00:00.000Z',
    updatedAt: '2026-11-28T21:05:00.000Z',
    ...overrides,
  };
}

const members = (from: number, count: number): string[] => Array.from({ length: count }, (_, i) => `u${1_000_000 + from + i}`);

describe('group state in Table Storage', () => {
  it('When links are written, read back and listed, then each comes back as written, the create intent included', async () => {
    const { store } = await freshStore();
    const created = link(HELPDESK);
    const intent = link(FIELD, { teamViewerGroupId: null, pending: 'create', name: 'Entra - Field "engineers" / EMEA #1', origin: 'created', role: null });
    await store.putGroupLink(created);
    await store.putGroupLink(intent);
    expect(await store.getGroupLink(HELPDESK)).toEqual(created);
    expect(await store.getGroupLink(FIELD)).toEqual(intent);
    expect((await store.listGroupLinks()).sort((a, b) => a.entraGroupId.localeCompare(b.entraGroupId))).toEqual([created, intent]);

    const adopted = { ...intent, teamViewerGroupId: '10000043', origin: 'adopted' as const, updatedAt: '2026-11-28T22:00:00.000Z' };
    delete adopted.pending;
    await store.putGroupLink(adopted);
    expect(await store.getGroupLink(FIELD)).toEqual(adopted);
    expect(await store.getGroupLink('0a1b2c3d-0000-4000-8000-00000000ffff')).toBeNull();
  });

  it('When a link records how many members tvsync manages, then the count comes back; one that is not a count is refused', async () => {
    const { store } = await freshStore();
    const counted = link(HELPDESK, { members: 250 });
    await store.putGroupLink(counted);
    expect(await store.getGroupLink(HELPDESK)).toEqual(counted);
    await expect(store.putGroupLink(link(FIELD, { members: -1 }))).rejects.toMatchObject({ code: 'STATE_INVALID_ARGUMENT' });
    expect(await store.getGroupLink(FIELD)).toBeNull();
  });

  it('When asked whether one account is a written member, then one point read answers, without listing the group', async () => {
    const counter = requestCounter();
    const { store } = await freshStore([counter]);
    await store.addMembers(HELPDESK, members(0, 3));
    const before = counter.other;
    expect(await store.hasMember(HELPDESK, members(1, 1)[0]!)).toBe(true);
    expect(counter.other - before).toBe(1);
    expect(await store.hasMember(HELPDESK, 'u42')).toBe(false);
    expect(await store.hasMember(FIELD, members(1, 1)[0]!)).toBe(false);
  });

  it('When an Entra group id comes in capitals, then it is the same link, and it comes back lower-case', async () => {
    const { store } = await freshStore();
    await store.putGroupLink(link(HELPDESK.toUpperCase()));
    expect((await store.getGroupLink(HELPDESK))?.entraGroupId).toBe(HELPDESK);
    await store.addMembers(HELPDESK.toUpperCase(), ['u1']);
    expect(await store.listMembers(HELPDESK)).toEqual(['u1']);
  });

  it('When a link without a TeamViewer id is not a pending create, or its id is not digits, then nothing is written', async () => {
    const { store } = await freshStore();
    await expect(store.putGroupLink(link(HELPDESK, { teamViewerGroupId: null }))).rejects.toMatchObject({ code: 'STATE_INVALID_ARGUMENT' });
    await expect(store.putGroupLink(link(HELPDESK, { teamViewerGroupId: 'g-1' }))).rejects.toMatchObject({ code: 'STATE_INVALID_ARGUMENT' });
    expect(await store.listGroupLinks()).toEqual([]);
  });

  it('When 2,500 members are written, then they go in transactions of 100, come back complete, and writing some again adds nothing', async () => {
    const counter = requestCounter();
    const { store } = await freshStore([counter]);
    const team = members(0, 2_500);
    await store.addMembers(HELPDESK, team);
    expect(counter.batches).toBe(25);
    expect(counter.other).toBe(2); // the two createTable calls of open()
    await store.addMembers(HELPDESK, team.slice(0, 150));
    const listed = await store.listMembers(HELPDESK);
    expect(listed).toHaveLength(2_500);
    expect(new Set(listed)).toEqual(new Set(team));
  });

  it('When members are removed, some never written, then exactly the written ones go and the others are no error', async () => {
    const { store } = await freshStore();
    await store.addMembers(HELPDESK, members(0, 150));
    await store.removeMembers(HELPDESK, [...members(0, 120), 'u42', 'u43']);
    expect((await store.listMembers(HELPDESK)).sort()).toEqual(members(120, 30).sort());
  });

  it('When every group\'s members are listed, then each group has its own and no other', async () => {
    const { store } = await freshStore();
    await store.addMembers(HELPDESK, members(0, 3));
    await store.addMembers(FIELD, members(2, 2));
    const all = await store.listAllMembers();
    expect(new Map([...all].map(([group, ids]) => [group, ids.sort()]))).toEqual(new Map([[HELPDESK, members(0, 3)], [FIELD, members(2, 2)]]));
  });

  it('When a link with 1,250 member rows is deleted, then the rows go first and the link last; deleting it again is no error', async () => {
    const { store } = await freshStore();
    await store.putGroupLink(link(HELPDESK));
    await store.putGroupLink(link(FIELD));
    await store.addMembers(HELPDESK, members(0, 1_250));
    await store.addMembers(FIELD, members(0, 2));
    await store.deleteGroupLink(HELPDESK);
    expect(await store.getGroupLink(HELPDESK)).toBeNull();
    expect(await store.listMembers(HELPDESK)).toEqual([]);
    expect((await store.listMembers(FIELD)).sort()).toEqual(members(0, 2));
    await store.deleteGroupLink(HELPDESK);
  });

  it('When clearing members fails half-way, then the link is still there to finish with', async () => {
    const failing: PipelinePolicy = {
      name: 'failSecondDelete',
      sendRequest: async (request, next) => {
        if (new URL(request.url).pathname.endsWith('$batch') && failing.armed && ++failing.seen === 2) throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
        return next(request);
      },
    } as PipelinePolicy & { armed?: boolean; seen?: number };
    const { store, prefix } = await freshStore([failing]);
    await store.putGroupLink(link(HELPDESK));
    await store.addMembers(HELPDESK, members(0, 300));
    Object.assign(failing, { armed: true, seen: 0 });
    await expect(store.deleteGroupLink(HELPDESK)).rejects.toBeInstanceOf(StateError);
    Object.assign(failing, { armed: false });
    expect(await store.getGroupLink(HELPDESK)).not.toBeNull();
    expect((await store.listMembers(HELPDESK)).length).toBeLessThan(300);
    const again = await GroupStateStore.open(target, { tablePrefix: prefix, tuning: FAST });
    await again.deleteGroupLink(HELPDESK);
    expect(await again.getGroupLink(HELPDESK)).toBeNull();
    expect(await again.listMembers(HELPDESK)).toEqual([]);
  });

  it('When a row was edited by hand into something tvsync never writes, then reading it is STATE_CORRUPT naming the row', async () => {
    const { store, prefix } = await freshStore();
    const raw = tableClient(target, `${prefix}Groups`, FAST);
    await raw.upsertEntity({ partitionKey: 'group', rowKey: HELPDESK, name: 'X', origin: 'stolen', createdAt: 'x', updatedAt: 'x', teamViewerGroupId: '1' }, 'Replace');
    const error = await store.listGroupLinks().then(() => undefined, (e: unknown) => e);
    expect(error).toMatchObject({ code: 'STATE_CORRUPT', table: `${prefix}Groups`, rowKey: HELPDESK });
    expect((error as Error).message).toMatch(/origin should be one of created, adopted/);

    const rawMembers = tableClient(target, `${prefix}GroupMembers`, FAST);
    await rawMembers.upsertEntity({ partitionKey: FIELD, rowKey: 'u1%zz' }, 'Replace');
    await expect(store.listMembers(FIELD)).rejects.toMatchObject({ code: 'STATE_CORRUPT', rowKey: 'u1%zz' });
  });

  it('When the table prefix cannot name both tables, then open refuses it before any request', async () => {
    await expect(GroupStateStore.open(target, { tablePrefix: `a${'b'.repeat(51)}` })).rejects.toMatchObject({ code: 'STATE_CONFIG' });
    await expect(GroupStateStore.open(target, { tablePrefix: '1abc' })).rejects.toMatchObject({ code: 'STATE_CONFIG' });
  });
});
