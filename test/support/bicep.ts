/**
 * The Bicep CLI for tests: found (or fetched) by .ci/bicep.sh, so tests and CI compile with the
 * same binary; and a reader for the ARM JSON it produces. Plain functions, no test-framework
 * imports.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const BICEP_SCRIPT = path.join(REPO_ROOT, '.ci', 'bicep.sh');

export type BicepCli = { path: string } | { path: null; reason: string };

/** The CLI .ci/bicep.sh uses (bicep on PATH, or the cached NuGet package, fetched on first use). */
export async function findBicep(timeoutMs = 170_000): Promise<BicepCli> {
  try {
    const { stdout } = await run('bash', [BICEP_SCRIPT, '--print-path'], { timeout: timeoutMs, maxBuffer: 1 << 20 });
    const found = stdout.trim().split('\n').pop() ?? '';
    if (found && fs.existsSync(found)) return { path: found };
    return { path: null, reason: `.ci/bicep.sh --print-path printed no usable path ("${found}")` };
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    return { path: null, reason: `.ci/bicep.sh could not provide the Bicep CLI: ${(e.stderr || e.message).trim()}` };
  }
}

export interface ArmParameter {
  type: string;
  defaultValue?: unknown;
  minValue?: number;
  maxValue?: number;
  allowedValues?: unknown[];
  minLength?: number;
  maxLength?: number;
}

export interface ArmResource {
  type: string;
  name: string;
  properties?: Record<string, unknown> & {
    template?: ArmTemplate;
    parameters?: Record<string, { value?: unknown }>;
    siteConfig?: { appSettings?: Array<{ name: string; value: unknown }> };
  };
}

export interface ArmTemplate {
  parameters?: Record<string, ArmParameter>;
  /** A list, or (languageVersion 2.0, e.g. a module that imports a function) resources by symbolic name. */
  resources: ArmResource[] | Record<string, ArmResource>;
  outputs?: Record<string, { type: string; value: unknown }>;
}

export interface BicepRun {
  ok: boolean;
  /** What .ci/bicep.sh printed (stdout and stderr). */
  output: string;
  /** The compiled main.bicep when the run succeeded. */
  template?: ArmTemplate;
}

/** Runs .ci/bicep.sh (lint every file, compile main.bicep) on an infra folder. */
export async function runBicepScript(infraDir: string, timeoutMs = 170_000): Promise<BicepRun> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvsync-arm-'));
  const armOut = path.join(dir, 'main.json');
  try {
    const { stdout, stderr } = await run('bash', [BICEP_SCRIPT, infraDir], {
      timeout: timeoutMs,
      maxBuffer: 16 << 20,
      env: { ...process.env, TVSYNC_BICEP_ARM_OUT: armOut },
    });
    return { ok: true, output: stdout + stderr, template: JSON.parse(fs.readFileSync(armOut, 'utf8')) as ArmTemplate };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` || e.message };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Compiles main.bicep with the linter off, so the template can still be read when only the linter
 * objects (the lint failure is reported by .ci/bicep.sh on its own).
 */
export async function compileWithoutLinter(bicep: string, file: string): Promise<ArmTemplate> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvsync-arm-'));
  try {
    const config = path.join(dir, 'bicepconfig.json');
    fs.writeFileSync(config, JSON.stringify({ analyzers: { core: { enabled: false } } }));
    const out = path.join(dir, 'main.json');
    await run(bicep, ['build', file, '--config', config, '--outfile', out], { timeout: 120_000, maxBuffer: 16 << 20 });
    return JSON.parse(fs.readFileSync(out, 'utf8')) as ArmTemplate;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Where a resource sits: its template and, for a module, the values its parent passes in. */
export interface ArmScope {
  template: ArmTemplate;
  values?: Record<string, { value?: unknown }>;
  parent?: ArmScope;
}

/** Every resource of the template and of its modules (nested deployments), with its scope. */
export function* armResources(template: ArmTemplate, scope: ArmScope = { template }): Generator<{ resource: ArmResource; scope: ArmScope }> {
  for (const resource of Array.isArray(template.resources) ? template.resources : Object.values(template.resources)) {
    yield { resource, scope };
    const nested = resource.type === 'Microsoft.Resources/deployments' ? resource.properties?.template : undefined;
    if (nested) yield* armResources(nested, { template: nested, values: resource.properties?.parameters ?? {}, parent: scope });
  }
}

export interface AppSetting {
  name: string;
  /** The value as written in the template: a literal, or an ARM expression "[...]". */
  value: unknown;
  scope: ArmScope;
}

/** `Microsoft.Web/sites/config` named appsettings: the literal `site/appsettings` or Bicep's format() of it. */
const APP_SETTINGS_CONFIG = /(\/appsettings|'appsettings'\))\]?$/i;

/**
 * The app settings of the template's Function App: its appsettings config resource, or the site's
 * siteConfig.appSettings. Both at once is refused: the config resource replaces every setting, so
 * what the site sets would silently be lost.
 */
export function functionAppSettings(template: ArmTemplate): AppSetting[] {
  const resources = [...armResources(template)];
  const sites = resources.filter(({ resource }) => resource.type === 'Microsoft.Web/sites');
  if (sites.length !== 1) throw new Error(`expected one Microsoft.Web/sites resource, found ${sites.length}`);
  const [{ resource: site, scope }] = sites;
  const inline = (site.properties?.siteConfig?.appSettings ?? []).map(({ name, value }) => ({ name, value, scope }));
  const configs = resources.filter(({ resource }) => resource.type === 'Microsoft.Web/sites/config' && APP_SETTINGS_CONFIG.test(resource.name));
  if (configs.length > 1) throw new Error(`expected at most one appsettings config resource, found ${configs.length}`);
  if (configs.length === 0) return inline;
  if (inline.length > 0) throw new Error('app settings are in both siteConfig.appSettings and an appsettings config resource, which replaces them');
  const [config] = configs;
  if (config.scope.template !== scope.template) throw new Error('the appsettings config resource is not in the template of the site');
  return Object.entries(config.resource.properties ?? {}).map(([name, value]) => ({ name, value, scope: config.scope }));
}

/**
 * The module output a value comes from: the value is a parameter of its own template, and the
 * parent passes that parameter the output of a sibling module (nested deployment).
 */
export function moduleOutputSource(value: unknown, scope: ArmScope): { module: string; output: string } | undefined {
  const ref = parameterReference(value);
  const passed = ref && scope.values?.[ref.name]?.value;
  const m = typeof passed === 'string' ? /^\[reference\(resourceId\('Microsoft\.Resources\/deployments', '([^']+)'\), '[^']+'\)\.outputs\.(\w+)\.value\]$/.exec(passed) : null;
  return m ? { module: m[1], output: m[2] } : undefined;
}

/**
 * How an app setting's value is made from one parameter of its own template: the parameter itself,
 * string() of it, or a bool parameter chosen between two literals (`x ? 'true' : 'false'`).
 * `render` turns the parameter's value into the setting's value the way ARM does (string() of a
 * bool is "True"/"False", which is why the template spells booleans out).
 */
function parameterReference(value: unknown): { name: string; render: (v: unknown) => unknown } | undefined {
  if (typeof value !== 'string') return undefined;
  const plain = /^\[parameters\('([^']+)'\)\]$/.exec(value);
  if (plain) return { name: plain[1], render: (v) => v };
  const stringOf = /^\[string\(parameters\('([^']+)'\)\)\]$/.exec(value);
  if (stringOf) return { name: stringOf[1], render: (v) => (typeof v === 'boolean' ? (v ? 'True' : 'False') : String(v)) };
  const choice = /^\[if\(parameters\('([^']+)'\), '([^']*)', '([^']*)'\)\]$/.exec(value);
  if (choice) return { name: choice[1], render: (v) => (v === true ? choice[2] : choice[3]) };
  return undefined;
}

/** The main.bicep parameter behind a value, and its default rendered down to this scope. */
function traceParameter(value: unknown, scope: ArmScope): { name: string; hasDefault: boolean; defaultValue?: unknown } | undefined {
  const ref = parameterReference(value);
  if (!ref) return undefined;
  if (scope.parent) {
    const passed = scope.values?.[ref.name];
    if (!passed || !('value' in passed)) return undefined;
    const above = traceParameter(passed.value, scope.parent);
    if (!above) return undefined;
    return above.hasDefault ? { ...above, defaultValue: ref.render(above.defaultValue) } : above;
  }
  const declared = scope.template.parameters?.[ref.name];
  if (!declared) return undefined;
  if (declared.defaultValue === undefined) return { name: ref.name, hasDefault: false };
  return { name: ref.name, hasDefault: true, defaultValue: ref.render(declared.defaultValue) };
}

/**
 * The main.bicep parameter an app setting comes straight from, followed up through the modules,
 * with the setting value its default gives. Undefined for literals and computed values (resource
 * names, Key Vault references...).
 */
export function sourceParameter(value: unknown, scope: ArmScope): { name: string; defaultValue?: string } | undefined {
  const traced = traceParameter(value, scope);
  if (!traced) return undefined;
  return { name: traced.name, defaultValue: traced.hasDefault ? String(traced.defaultValue) : undefined };
}

/**
 * Compiles a .bicepparam file (`bicep build-params`) with the given environment, for
 * readEnvironmentVariable(), and returns the parameter values it produces.
 */
export async function buildParams(bicep: string, file: string, env: NodeJS.ProcessEnv): Promise<Record<string, unknown>> {
  const { stdout } = await run(bicep, ['build-params', file, '--stdout'], { timeout: 120_000, maxBuffer: 16 << 20, env });
  const built = JSON.parse(stdout) as { parametersJson: string };
  const parameters = (JSON.parse(built.parametersJson) as { parameters: Record<string, { value?: unknown }> }).parameters;
  return Object.fromEntries(Object.entries(parameters).map(([name, p]) => [name, p.value]));
}
