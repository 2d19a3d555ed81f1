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
