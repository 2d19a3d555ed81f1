/**
 * A malformed local.settings.json is reported by line and column, never by quoting it: the file
 * holds the TeamViewer token, and the message is printed to a terminal (and pasted into tickets).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadSettings, readLocalSettings, SettingsError } from '../../shared/config';
import { locateJsonError } from '../../shared/json-position';

const TOKEN = 'tv-secret-9f8e7d6c5b4a';
const dirs: string[] = [];

function folderWith(content: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvsync-local-settings-'));
  dirs.push(dir);
  fs.writeFileSync(path.join(dir, 'local.settings.json'), content);
  return dir;
}

afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

describe('local.settings.json', () => {
  it.each<[string, string, number, number, string]>([
    ['a missing comma after the token', `{\n  "Values": {\n    "TEAMVIEWER_API_TOKEN": "${TOKEN}"\n    "LOG_LEVEL": "debug"\n  }\n}\n`, 4, 5, '"," or "}"'],
    ['a trailing comma', `{\n  "Values": {\n    "TEAMVIEWER_API_TOKEN": "${TOKEN}",\n  }\n}`, 4, 3, 'a name in double quotes'],
    ['single quotes around the token', `{ "Values": { "TEAMVIEWER_API_TOKEN": '${TOKEN}' } }`, 1, 39, 'a value'],
    ['a Windows path with single backslashes', `{ "Values": { "TEAMVIEWER_API_TOKEN": "${TOKEN}", "X": "C:\\Users" } }`, 1, 73, 'a valid escape after the backslash'],
    ['a line break inside the token', `{ "Values": {\n "TEAMVIEWER_API_TOKEN": "${TOKEN}\n" } }`, 2, 49, 'a closing double quote on the same line'],
    ['the token left unclosed at the end', `{ "Values": { "TEAMVIEWER_API_TOKEN": "${TOKEN}`, 1, 62, 'a closing double quote'],
    ['a comment', `// my settings\n{ "Values": { "TEAMVIEWER_API_TOKEN": "${TOKEN}" } }`, 1, 1, 'a value'],
    ['text after the object', `{ "Values": { "TEAMVIEWER_API_TOKEN": "${TOKEN}" } } ${TOKEN}`, 1, 68, 'the end of the file'],
  ])('When the file has %s, then the problem names line and column, never its text', (_what, content, line, column, expected) => {
    const { problem, values } = readLocalSettings(folderWith(content));
    expect(values).toEqual({});
    expect(problem).toMatch(new RegExp(`local\\.settings\\.json is not valid JSON: line ${line}, column ${column}: expected ${expected.replace(/[.*+?^${}()|[\]\\"]/g, '\\$&')}`));
    expect(problem).not.toContain(TOKEN);
    expect(problem).not.toContain('tv-secret');
    expect(locateJsonError(content)).toMatchObject({ line, column });
  });

  it('When tvsync starts with a malformed file, then the settings error names the file and the place, and not the token', () => {
    const dir = folderWith(`{ "Values": { "TEAMVIEWER_API_TOKEN": "${TOKEN}" "X": 1 } }`);
    let error: unknown;
    try {
      loadSettings({ env: {}, localSettingsDir: dir });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SettingsError);
    expect((error as Error).message).toMatch(/local\.settings\.json: .*local\.settings\.json is not valid JSON: line 1, column 64: expected "," or "}"/);
    expect((error as Error).message).not.toContain(TOKEN);
  });

  it('When the file is valid, with or without the BOM Visual Studio writes, then its Values are read', () => {
    for (const bom of ['', '\uFEFF']) {
      const { problem, values } = readLocalSettings(folderWith(`${bom}{ "IsEncrypted": false, "Values": { "LOG_LEVEL": "debug", "SYNC_INTERVAL_MINUTES": 45 } }`));
      expect(problem).toBeUndefined();
      expect(values).toEqual({ LOG_LEVEL: 'debug', SYNC_INTERVAL_MINUTES: '45' });
    }
    expect(readLocalSettings(folderWith('{ "Values": ["x"] }')).problem).toMatch(/"Values" must be an object/);
  });

  it('agrees with JSON.parse on what is JSON', () => {
    for (const text of ['{}', '[]', '"x"', '0', '-1.5e+3', 'true', 'null', '{"a":[1,{"b":"\\u00e9\\n"}]}', ' \n{ "a" : 1 } \n']) {
      expect(() => JSON.parse(text)).not.toThrow();
      expect(locateJsonError(text), text).toBeNull();
    }
    for (const text of ['', '{', '01', '1.', '.5', '+1', 'tru', '{"a" 1}', '[1,]', '"\\x"', '{"a":1}}', 'NaN', '\u00a0{}']) {
      expect(() => JSON.parse(text)).toThrow();
      expect(locateJsonError(text), text).not.toBeNull();
    }
  });
});
