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
      teamViewerConcurrency: 4,
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
