import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SETTING_SPECS } from '../../shared/config';

const readme = fs.readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');

describe('README', () => {
  it('documents every setting the config module reads, in the settings table', () => {
    const table = readme.slice(readme.indexOf('## Settings'), readme.indexOf('## Status'));
    const missing = SETTING_SPECS.filter((s) => !table.includes(`| \`${s.name}\` |`)).map((s) => s.name);
    expect(missing).toEqual([]);
  });

  it('shows the two quick-start commands exactly', () => {
    expect(readme).toContain('npm ci && npm run demo');
    expect(readme).toContain('npm ci && npm test');
  });
});

describe('README examples', () => {
  const jsonBlockAfter = (heading: string): string => {
    const at = readme.indexOf(heading);
    const start = readme.indexOf('```json', at) + '```json'.length;
    return readme.slice(start, readme.indexOf('```', start));
  };

  it('the scoping filter example is accepted by the settings parser', async () => {
    const { parseScopingFilters } = await import('../../shared/sync/scoping');
    expect(parseScopingFilters(jsonBlockAfter('### Scoping filters'))).toHaveLength(2);
  });

  it('the attribute mapping example (with pasted Entra expressions) is accepted and maps a user', async () => {
    const { parseMappings, mapUser, DEFAULT_SYNC_CONFIG, draftFor } = await import('../../shared/sync/mapping');
    const mappings = parseMappings(jsonBlockAfter('### Attribute mappings'));
    const desired = mapUser(
      { id: 'e1', userPrincipalName: 'Zoe@contoso.com', displayName: null, givenName: 'Zoë', surname: 'Ångström', mail: 'Zoe@Contoso.com', accountEnabled: true, direct: true, viaGroups: [], appRoleIds: [], attributes: { usageLocation: 'AT' } },
      { ...DEFAULT_SYNC_CONFIG, mappings },
    );
    expect(draftFor(desired)).toEqual({
      userName: 'Zoe@contoso.com',
      displayName: 'Zoë Ångström',
      givenName: 'Zoë',
      familyName: 'Ångström',
      email: 'zoe@contoso.com',
      preferredLanguage: 'de',
      ssoCustomerId: 'your-sso-customer-id',
      active: true,
    });
  });
});
