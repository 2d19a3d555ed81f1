/**
 * Entra's "test connection", for each target tvsync talks to: Table Storage (the state tables),
 * Microsoft Graph (the service principal) and TeamViewer (a lookup of a random userName must return
 * an empty list). Every target is checked even when one fails; errors carry no secret.
 */
import { redactText } from '../log';
import type { EntraReader } from '../entra/reader';
import type { StateStore } from '../state/store';
import type { TeamViewerClient } from '../teamviewer/client';

export interface ConnectionCheck {
  target: 'Microsoft Graph' | 'TeamViewer' | 'Table Storage';
  ok: boolean;
  detail: string;
  code?: string;
}

export async function testConnections(store: StateStore, entra: EntraReader, teamViewer: TeamViewerClient): Promise<ConnectionCheck[]> {
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
  return checks;
}
