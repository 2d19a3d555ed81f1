/**
 * Entra's "test connection", for each target tvsync talks to: Table Storage (the state tables),
 * Microsoft Graph (the service principal) and TeamViewer (a lookup of a random userName must return
 * an empty list). Every target is checked even when one fails; errors carry no secret.
 */
import { redactText } from '../log';
import type { EntraReader } from '../entra/reader';
import type { StateStore } from '../state/store';
import type { TeamViewerClient } from '../teamviewer/client';
import type { TeamViewerUserGroups } from '../teamviewer/usergroups';
import type { GroupSettings } from '../domain/group-model';
import { resolveGroupRoles } from '../sync/group-roles';

export interface ConnectionCheck {
  target: 'Microsoft Graph' | 'TeamViewer' | 'Table Storage' | 'TeamViewer user groups';
  ok: boolean;
  detail: string;
  code?: string;
}

export async function testConnections(store: StateStore, entra: EntraReader, teamViewer: TeamViewerClient, groups: { teamViewer: TeamViewerUserGroups; settings: GroupSettings } | null = null): Promise<ConnectionCheck[]> {
  const checks: ConnectionCheck[] = [];
  const attempt = async (target: ConnectionCheck['target'], fn: () => Promise<string>) => {
    try {
      checks.push({ target, ok: true, detail: await fn() });
    } catch (err) {
      const code = (err as { code?: string }).code;
      checks.push({ target, ok: false, detail: redactText((err as Error).message ?? String(err)), ...(code ? { code } : {}) });
    }
  };
  await attempt('Table Storage', async () => {
    const cycles = await store.listCycles(1);
    return `state tables reachable (${cycles.length ? `last cycle ${cycles[0].id}` : 'no cycle yet'})`;
  });
  await attempt('Microsoft Graph', async () => {
    const sp = await entra.getServicePrincipal();
    return `service principal "${sp.displayName}" (appId ${sp.appId}) readable`;
  });
  await attempt('TeamViewer', async () => {
    await teamViewer.testConnection();
    return 'SCIM API accepted the token (GET /Users?filter=userName eq "<random guid>" returned an empty list)';
  });
  if (groups) await attempt('TeamViewer user groups', () => checkUserGroups(entra, groups));
  return checks;
}

/**
 * GROUP_PROVISIONING=assigned: the token may read user groups (and roles, with GROUP_ROLES), and
 * every GROUP_ROLES entry names an assigned group and a role the company has.
 */
async function checkUserGroups(entra: EntraReader, groups: { teamViewer: TeamViewerUserGroups; settings: GroupSettings }): Promise<string> {
  const listed = await groups.teamViewer.listGroups();
  if (groups.settings.roles.length === 0) return `the Web API lists the company's ${listed.length} user group(s); GROUP_ROLES is empty, so roles are left alone`;
  const [roles, assigned] = await Promise.all([groups.teamViewer.listRoles(), entra.readAssignedGroups()]);
  const { problems, byGroup } = resolveGroupRoles(groups.settings.roles, roles, assigned);
  if (problems.length > 0) {
    throw Object.assign(new Error(`GROUP_ROLES cannot be applied as written: ${problems.map((p) => p.message).join('; ')}`), { code: problems[0]!.code });
  }
  return `the Web API lists the company's ${listed.length} user group(s) and ${roles.length} role(s); every GROUP_ROLES entry (${byGroup.size}) names an assigned group and a role`;
}
