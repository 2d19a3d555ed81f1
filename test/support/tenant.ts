/**
 * A sample Entra tenant for the demo, the benchmarks and the end-to-end tests: deterministic
 * (seeded), so a test can name the users it expects.
 */
import type { EmulatedTenant } from '../emulators/graph';

export const SP_ID = '5e0c1f7a-2b3d-4c5e-8f90-a1b2c3d4e5f6';
export const DEFAULT_ROLE = '00000000-0000-0000-0000-000000000000';
export const USER_ROLE = '7b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d';

const FIRST = ['Anna', 'Ben', 'Chloé', 'David', 'Emma', 'Felix', 'Grace', 'Hugo', 'Ines', 'Jonas', 'Karin', 'Lukas', 'Maja', 'Noah', 'Olivia', 'Paul', 'Zoë', 'Søren', 'Łukasz', 'Ana María'];
const LAST = ['Müller', 'Schmidt', 'Smith', 'Johnson', 'García', 'Rossi', 'Dubois', 'Nowak', 'Jensen', 'Ångström', "O'Brien", 'van der Berg', 'Kowalski', 'Brown', 'Lee'];
const DEPARTMENTS = ['Sales', 'Support', 'Engineering', 'Finance', 'Marketing'];

/** A small, fast, seeded PRNG (mulberry32): the same seed gives the same tenant. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A GUID-shaped id derived from a number, readable in test output (…-000000000042). */
export function guid(kind: number, n: number): string {
  const hex = n.toString(16).padStart(12, '0');
  return `${kind.toString(16).padStart(8, '0')}-0000-4000-8000-${hex}`;
}

export const userId = (n: number) => guid(0xa, n);
export const groupId = (n: number) => guid(0xb, n);

/** person.N@contoso.example: the logins of directTenant's users. */
export const personUpn = (n: number) => `person.${n}@contoso.example`;

/** `count` enabled users "Person N", each assigned to the app directly (one app role assignment each). */
export function directTenant(count: number): EmulatedTenant {
  return {
    servicePrincipals: [{ id: SP_ID, appId: 'b1e3a2c4-0000-4000-8000-7ea3c1e0ab1e', displayName: 'TeamViewer' }],
    users: Array.from({ length: count }, (_, i) => ({ id: userId(i + 1), userPrincipalName: personUpn(i + 1), displayName: `Person ${i + 1}`, givenName: 'Person', surname: `${i + 1}`, mail: personUpn(i + 1), accountEnabled: true })),
    groups: [],
    assignments: Array.from({ length: count }, (_, i) => ({ id: `asg-${i + 1}`, resourceId: SP_ID, principalId: userId(i + 1), principalType: 'User' as const, appRoleId: DEFAULT_ROLE })),
  };
}

export interface SampleTenantOptions {
  users?: number;
  groups?: number;
  seed?: number;
  domain?: string;
}

/**
 * `users` users; about a third assigned directly, the rest through `groups` groups (each user in
 * at most one group, some in two); every 25th user not assigned at all; every 40th disabled;
 * one nested group inside group 1 (not expanded by Entra); one service principal assignment.
 */
export function sampleTenant(options: SampleTenantOptions = {}): EmulatedTenant {
  const count = options.users ?? 300;
  const groupCount = options.groups ?? 5;
  const domain = options.domain ?? 'contoso.example';
  const random = rng(options.seed ?? 42);
  const tenant: EmulatedTenant = {
    servicePrincipals: [{ id: SP_ID, appId: 'b1e3a2c4-0000-4000-8000-7ea3c1e0ab1e', displayName: 'TeamViewer' }],
    users: [],
    groups: [],
    assignments: [],
  };
  for (let g = 1; g <= groupCount; g++) {
    tenant.groups.push({ id: groupId(g), displayName: `TeamViewer ${DEPARTMENTS[(g - 1) % DEPARTMENTS.length]} ${g}`, members: [] });
    tenant.assignments.push({ id: `asg-g${g}`, resourceId: SP_ID, principalId: groupId(g), principalType: 'Group', appRoleId: g % 2 ? DEFAULT_ROLE : USER_ROLE });
  }
  // A nested group (member of group 1, not itself assigned): its members are NOT in scope.
  const nested = { id: groupId(999), displayName: 'Nested contractors', members: [] as string[] };
  tenant.groups.push(nested);
  tenant.groups[0].members.push(nested.id);

  for (let n = 1; n <= count; n++) {
    const first = FIRST[Math.floor(random() * FIRST.length)];
    const last = LAST[Math.floor(random() * LAST.length)];
    const login = `${first}.${last}.${n}`.normalize('NFD').replace(/[\u0300-\u036f]/g, '').replace(/[^A-Za-z0-9.]/g, '').toLowerCase();
    const id = userId(n);
    tenant.users.push({
      id,
      userPrincipalName: `${login}@${domain}`,
      displayName: `${first} ${last}`,
      givenName: first,
      surname: last,
      mail: `${login}@${domain}`,
      accountEnabled: n % 40 !== 0,
      department: DEPARTMENTS[n % DEPARTMENTS.length],
      jobTitle: n % 7 === 0 ? 'Manager' : 'Specialist',
    });
    if (n % 25 === 0) continue; // not assigned
    if (n % 3 === 0) {
      tenant.assignments.push({ id: `asg-u${n}`, resourceId: SP_ID, principalId: id, principalType: 'User', appRoleId: DEFAULT_ROLE });
    } else if (n % 31 === 0) {
      nested.members.push(id); // only reachable through the nested group: out of scope
    } else {
      const group = tenant.groups[n % groupCount];
      group.members.push(id);
      if (n % 11 === 0) tenant.groups[(n + 1) % groupCount].members.push(id); // in two groups
    }
  }
  tenant.assignments.push({ id: 'asg-sp', resourceId: SP_ID, principalId: 'c0ffee00-0000-4000-8000-000000000001', principalType: 'ServicePrincipal', appRoleId: DEFAULT_ROLE });
  return tenant;
}

/** The users Entra would provision: assigned directly or directly in an assigned group, and enabled. */
export function expectedInScope(tenant: EmulatedTenant, servicePrincipalId = SP_ID): Set<string> {
  const userIds = new Set(tenant.users.map((u) => u.id));
  const inScope = new Set<string>();
  for (const a of tenant.assignments) {
    if (a.resourceId !== servicePrincipalId) continue;
    if (a.principalType === 'User') inScope.add(a.principalId);
    if (a.principalType === 'Group') {
      for (const m of tenant.groups.find((g) => g.id === a.principalId)?.members ?? []) if (userIds.has(m)) inScope.add(m);
    }
  }
  for (const u of tenant.users) if (!u.accountEnabled) inScope.delete(u.id);
  return inScope;
}
