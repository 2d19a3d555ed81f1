import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkNcrontab, loadSettings, SETTING_SPECS, SettingsError } from '../../shared/config';
import { redactText } from '../../shared/log';

const good = {
  AzureWebJobsStorage: 'UseDevelopmentStorage=true',
  ENTRA_SERVICE_PRINCIPAL_ID: '3f2b9c1e-6a4d-4e5f-9b8a-1c2d3e4f5a6b',
  TEAMVIEWER_API_TOKEN: '1234567-AbCdEfGhIjKlMnOpQrSt',
};

function problemsOf(env: NodeJS.ProcessEnv, dir: string | null = null): string[] {
  try {
    loadSettings({ env, localSettingsDir: dir });
  } catch (err) {
    expect(err).toBeInstanceOf(SettingsError);
    return (err as SettingsError).problems.map((p) => p.setting);
  }
  return [];
}

describe('settings', () => {
  it('When only the required settings are given, then every default applies', () => {
    const settings = loadSettings({ env: good, localSettingsDir: null });
    expect(settings).toMatchObject({
      graphBaseUrl: 'https://graph.microsoft.com',
      teamViewerScimUrl: 'https://webapi.teamviewer.com/scim/v2',
      syncSchedule: '0 */5 * * * *',
      syncIntervalMinutes: 40,
      teamViewerConcurrency: 16,
      tablePrefix: 'tvsync',
      graphTimeoutSeconds: 30,
      teamViewerTimeoutSeconds: 30,
    });
  });

  it('When several settings are wrong, then one error names every one of them', () => {
    const env = {
      ENTRA_SERVICE_PRINCIPAL_ID: 'not-a-guid',
      GRAPH_BASE_URL: 'http://graph.example.com',
      SYNC_INTERVAL_MINUTES: 'soon',
      SYNC_SCHEDULE: '*/40 * * * *',
      TEAMVIEWER_CONCURRENCY: '99',
    };
    expect(problemsOf(env).sort()).toEqual(
      ['AzureWebJobsStorage', 'ENTRA_SERVICE_PRINCIPAL_ID', 'GRAPH_BASE_URL', 'SYNC_INTERVAL_MINUTES', 'SYNC_SCHEDULE', 'TEAMVIEWER_API_TOKEN', 'TEAMVIEWER_CONCURRENCY'].sort(),
    );
  });

  it('When plain http points at loopback, then it is allowed; elsewhere it is refused', () => {
    expect(problemsOf({ ...good, TEAMVIEWER_SCIM_URL: 'http://127.0.0.1:8080/scim/v2' })).toEqual([]);
    expect(problemsOf({ ...good, TEAMVIEWER_SCIM_URL: 'http://localhost:8080/scim/v2' })).toEqual([]);
    expect(problemsOf({ ...good, TEAMVIEWER_SCIM_URL: 'http://10.0.0.5/scim/v2' })).toEqual(['TEAMVIEWER_SCIM_URL']);
  });

  it('When a value is still a Key Vault reference, then the error says so and hides the secret reference', () => {
    let message = '';
    try {
      loadSettings({ env: { ...good, TEAMVIEWER_API_TOKEN: '@Microsoft.KeyVault(VaultName=kv;SecretName=tv)' }, localSettingsDir: null });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/TEAMVIEWER_API_TOKEN: is an unresolved Key Vault reference/);
    expect(message).toMatch(/Key Vault Secrets User/);
  });

  it('When local.settings.json has Values, then they are read and the environment wins', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvsync-settings-'));
    fs.writeFileSync(path.join(dir, 'local.settings.json'), JSON.stringify({ Values: { ...good, SYNC_INTERVAL_MINUTES: '60', TEAMVIEWER_CONCURRENCY: '2' } }));
    const settings = loadSettings({ env: { TEAMVIEWER_CONCURRENCY: '8' }, localSettingsDir: dir });
    expect(settings.syncIntervalMinutes).toBe(60);
    expect(settings.teamViewerConcurrency).toBe(8);
  });

  it('When local.settings.json is not JSON, then that is reported with the other problems', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvsync-settings-'));
    fs.writeFileSync(path.join(dir, 'local.settings.json'), '{ "Values": ');
    expect(problemsOf({ ...good }, dir)).toEqual(['local.settings.json']);
  });

  it('When storage is identity-based, then no connection string is needed', () => {
    const { AzureWebJobsStorage: _unused, ...rest } = good;
    const settings = loadSettings({ env: { ...rest, AzureWebJobsStorage__accountName: 'sttvsync', AzureWebJobsStorage__clientId: '3f2b9c1e-6a4d-4e5f-9b8a-1c2d3e4f5a6b' }, localSettingsDir: null });
    expect(settings.storage).toEqual({ kind: 'identity', tableServiceUri: 'https://sttvsync.table.core.windows.net', clientId: '3f2b9c1e-6a4d-4e5f-9b8a-1c2d3e4f5a6b' });
  });

  it('When a setting is bad, then the secret values never appear in the message, and are redacted from later logs', () => {
    const key = 'c2VjcmV0LWFjY291bnQta2V5LXRoYXQtbXVzdC1ub3QtbGVhaw==';
    let message = '';
    try {
      loadSettings({ env: { ...good, AzureWebJobsStorage: `AccountName=x;Nope=${key}`, TEAMVIEWER_CONCURRENCY: 'x' }, localSettingsDir: null });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/AzureWebJobsStorage/);
    expect(message).not.toContain(key);
    expect(redactText(`token is ${good.TEAMVIEWER_API_TOKEN}`)).toBe('token is [redacted]');
  });

  it.each([
    ['0 */5 * * * *', null],
    ['0 0 * * * MON-FRI', null],
    ['*/40 * * * *', /six fields/],
    ['0 61 * * * *', /minute field/],
    ['0 */0 * * * *', /minute field/],
  ])('NCRONTAB %s', (expression, expected) => {
    const problem = checkNcrontab(expression);
    if (expected === null) expect(problem).toBeNull();
    else expect(problem).toMatch(expected);
  });

  it.each([
    ['500', { kind: 'count', value: 500 }],
    ['15%', { kind: 'percent', value: 15 }],
  ])('DEACTIVATION_THRESHOLD %s is accepted', (value, threshold) => {
    expect(loadSettings({ env: { ...good, DEACTIVATION_THRESHOLD: value }, localSettingsDir: null }).guard.threshold).toEqual(threshold);
  });

  it.each(['0', '-3', '150%', 'many', '0%'])('DEACTIVATION_THRESHOLD %s is refused', (value) => {
    expect(problemsOf({ ...good, DEACTIVATION_THRESHOLD: value })).toEqual(['DEACTIVATION_THRESHOLD']);
  });

  it.each(['0', '301', '2.5', 'soon'])('When a timeout is %s seconds, then both timeout settings are refused by name', (value) => {
    expect(problemsOf({ ...good, GRAPH_TIMEOUT_SECONDS: value, TEAMVIEWER_TIMEOUT_SECONDS: value }).sort()).toEqual(['GRAPH_TIMEOUT_SECONDS', 'TEAMVIEWER_TIMEOUT_SECONDS']);
  });

  it('Every declared setting has a description and an example', () => {
    for (const spec of SETTING_SPECS) {
      expect(spec.description.length, spec.name).toBeGreaterThan(10);
      expect(spec.example.length, spec.name).toBeGreaterThan(0);
      expect(spec.required || spec.default !== undefined, spec.name).toBe(true);
    }
  });
});

describe('group settings', () => {
  const messages = (env: NodeJS.ProcessEnv): string[] => {
    try {
      loadSettings({ env: { ...good, ...env }, localSettingsDir: null });
    } catch (err) {
      return (err as SettingsError).problems.map((p) => `${p.setting}: ${p.problem}`);
    }
    return [];
  };

  it('When DRIFT_CHECK is not given, then hand edits are looked for every cycle; daily and off are taken as given', () => {
    expect(loadSettings({ env: good, localSettingsDir: null }).driftCheck).toBe('every-cycle');
    expect(loadSettings({ env: { ...good, DRIFT_CHECK: 'daily' }, localSettingsDir: null }).driftCheck).toBe('daily');
    expect(loadSettings({ env: { ...good, DRIFT_CHECK: 'off' }, localSettingsDir: null }).driftCheck).toBe('off');
  });

  it('When DRIFT_CHECK is something else, then start-up stops naming it with the other bad settings', () => {
    expect(messages({ DRIFT_CHECK: 'hourly', GROUP_PROVISIONING: 'yes' })).toEqual([
      'GROUP_PROVISIONING: "yes" must be off or assigned',
      'DRIFT_CHECK: "hourly" must be every-cycle, daily or off',
    ]);
  });

  it('When no group setting is given, then groups are off, with no prefix and no roles', () => {
    expect(loadSettings({ env: good, localSettingsDir: null }).groups).toEqual({ provisioning: 'off', prefix: '', roles: [] });
  });

  it('When groups are on with a prefix ending in a space and roles, then the prefix is kept as typed and the roles as given', () => {
    const settings = loadSettings({
      env: { ...good, GROUP_PROVISIONING: 'assigned', GROUP_NAME_PREFIX: 'Entra - ', GROUP_ROLES: '[{"group":"Helpdesk","role":"Support agent"},{"group":"3F2B9C1E-6A4D-4E5F-9B8A-1C2D3E4F5A6B","role":"Administrator"}]' },
      localSettingsDir: null,
    });
    expect(settings.groups).toEqual({
      provisioning: 'assigned',
      prefix: 'Entra - ',
      roles: [{ group: 'Helpdesk', role: 'Support agent' }, { group: '3F2B9C1E-6A4D-4E5F-9B8A-1C2D3E4F5A6B', role: 'Administrator' }],
    });
  });

  it('When GROUP_ROLES has many problems, then start-up stops naming every one of them, with the other bad group settings', () => {
    const roles = JSON.stringify([
      { group: 'Helpdesk', role: 'Support agent' },
      { group: 'Helpdesk', role: 'Administrator' },
      { group: '', role: 'Administrator' },
      { group: 'Field engineers' },
      { group: 'Sales', role: 'Sales', colour: 'blue' },
      'Finance',
      { group: 42, role: 'Administrator' },
      { group: '3f2b9c1e-6a4d-4e5f-9b8a-1c2d3e4f5a6b', role: 'A' },
      { group: '3F2B9C1E-6A4D-4E5F-9B8A-1C2D3E4F5A6B', role: 'B' },
    ]);
    expect(messages({ GROUP_PROVISIONING: 'yes', GROUP_NAME_PREFIX: ' TV', GROUP_ROLES: roles })).toEqual([
      'GROUP_PROVISIONING: "yes" must be off or assigned',
      'GROUP_NAME_PREFIX: " TV" starts with white space; TeamViewer names should not',
      'GROUP_ROLES: entry 2 maps the group "Helpdesk" again (first in entry 1); give each group one role',
      'GROUP_ROLES: entry 3 has no "group" (an Entra group object id or its exact display name)',
      'GROUP_ROLES: entry 4 has no "role" (a TeamViewer role name or id)',
      'GROUP_ROLES: entry 5 has the unknown key "colour" (only "group" and "role")',
      'GROUP_ROLES: entry 6 is not an object like {"group": "Helpdesk", "role": "Support agent"}',
      'GROUP_ROLES: entry 7: "group" must be a string (an Entra group object id or its exact display name)',
      'GROUP_ROLES: entry 9 maps the group "3F2B9C1E-6A4D-4E5F-9B8A-1C2D3E4F5A6B" again (first in entry 8); give each group one role',
    ]);
  });

  it.each([
    ['not JSON', '[{group: "Helpdesk"}]', /^GROUP_ROLES: is not JSON \(/],
    ['not an array', '{"group":"Helpdesk","role":"Support agent"}', /^GROUP_ROLES: must be a JSON array/],
  ])('When GROUP_ROLES is %s, then that is the one problem named', (_what, value, expected) => {
    const found = messages({ GROUP_ROLES: value });
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(expected);
  });

  it.each([
    ['51 characters', 'x'.repeat(51)],
    ['a line break', 'TV\n'],
    ['a control character', 'TV\u0007 '],
    ['only spaces', '   '],
  ])('When GROUP_NAME_PREFIX has %s, then start-up stops naming it', (_what, prefix) => {
    expect(problemsOf({ ...good, GROUP_NAME_PREFIX: prefix })).toEqual(['GROUP_NAME_PREFIX']);
  });

  it('When GROUP_NAME_PREFIX has 50 characters, then it is accepted', () => {
    expect(loadSettings({ env: { ...good, GROUP_NAME_PREFIX: 'p'.repeat(50) }, localSettingsDir: null }).groups.prefix).toHaveLength(50);
  });
});
