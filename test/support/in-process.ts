/**
 * Shared set-up for test files that run real cycles in this process: one Azurite and one
 * managed-identity endpoint per file (MSAL remembers the endpoint once per process, so every world
 * of a file must share it), worlds closed after each test, process.env restored.
 */
import { afterAll, afterEach, beforeAll } from 'vitest';
import { createApp, type App } from '../../shared/app';
import { loadSettings } from '../../shared/config';
import { memoryLogger } from '../../shared/log';
import type { CycleReport } from '../../shared/sync/cycle';
import { startIdentityEmulator, type IdentityEmulator } from '../emulators/identity';
import { startAzurite } from './azurite';
import { startWorld, type World, type WorldOptions } from './world';

export interface InProcess {
  /** The environment as it was before the file ran. */
  savedEnv: NodeJS.ProcessEnv;
  /** A world sharing the file's Azurite and identity endpoint; closed after the test. */
  world(options?: Omit<WorldOptions, 'identity' | 'storageConnectionString'>): Promise<World>;
  /** The app as the timer or the CLI builds it: the world's settings plus `settings`, from process.env. */
  app(w: World, settings?: Record<string, string>): Promise<App>;
  /** One cycle with those settings. */
  cycle(w: World, settings?: Record<string, string>): Promise<CycleReport>;
}

export function inProcess(): InProcess {
  let storage: Awaited<ReturnType<typeof startAzurite>>;
  let identity: IdentityEmulator;
  const worlds: World[] = [];
  const savedEnv = { ...process.env };
  beforeAll(async () => {
    [storage, identity] = await Promise.all([startAzurite(), startIdentityEmulator()]);
  });
  afterEach(async () => {
    await Promise.all(worlds.splice(0).map((w) => w.close()));
    process.env = { ...savedEnv };
  });
  afterAll(async () => {
    await Promise.all([storage?.stop(), identity?.close()]);
  });
  const app = async (w: World, settings: Record<string, string> = {}) => {
    process.env = { ...savedEnv, ...w.env, ...settings };
    return createApp(loadSettings({ env: process.env, localSettingsDir: null }), { logger: memoryLogger() });
  };
  return {
    savedEnv,
    async world(options = {}) {
      const w = await startWorld({ ...options, identity, storageConnectionString: storage.connectionString });
      worlds.push(w);
      return w;
    },
    app,
    async cycle(w, settings = {}) {
      return (await app(w, settings)).runCycle({ trigger: 'cli' });
    },
  };
}
