/**
 * The deployment matches the code: what shared/config.ts reads (SETTING_SPECS, read at test time)
 * is what infra/main.bicep sets in Azure and what local.settings.sample.json lists; the template
 * compiles and lints clean with the real Bicep CLI (.ci/bicep.sh), and breaking it fails that
 * script; the publish package (.funcignore) holds the compiled app and nothing else.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings, SETTING_SPECS, SettingsError, type SettingSpec } from '../../shared/config';
import { CYCLE_RECORD_PREFIX } from '../../shared/cycle-record';
import { parseScopingFilters } from '../../shared/sync/scoping';
import { armResources, buildParams, compileWithoutLinter, findBicep, functionAppSettings, moduleOutputSource, REPO_ROOT, runBicepScript, sourceParameter, type AppSetting, type ArmResource, type ArmScope, type ArmTemplate, type BicepRun } from '../support/bicep';

const run = promisify(execFile);

/**
 * App settings the template sets for the Functions platform, not for tvsync's config module.
 * Each needs a reason; anything else the template sets must be in SETTING_SPECS.
 */
const PLATFORM_SETTINGS: Record<string, string> = {
  // Where the host and the Node worker send telemetry (the code never reads it).
  APPLICATIONINSIGHTS_CONNECTION_STRING: 'Application Insights target',
  // Telemetry with the managed identity's token, since local auth is off on the component.
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Application Insights Entra ID ingestion',
  // The host's own switch for one function: pauses the sync timer (parameter syncDisabled).
  'AzureWebJobs.sync.Disabled': 'pauses the sync timer',
};

/**
 * tvsync settings the template fills in from the resources it creates, not from a parameter of
 * main.bicep; every other setting in SETTING_SPECS must be a parameter, or a re-deployment would
 * reset what an admin tuned.
 */
const FROM_RESOURCES: Record<string, string> = {
  AzureWebJobsStorage: 'never set on Flex Consumption: identity-based storage instead',
  AzureWebJobsStorage__accountName: 'the storage account the template creates',
  AzureWebJobsStorage__tableServiceUri: 'not set: tvsync derives it from the account name',
  AzureWebJobsStorage__credential: 'always managedidentity',
  AzureWebJobsStorage__clientId: 'the managed identity the template creates',
  AZURE_CLIENT_ID: 'the managed identity the template creates',
  TEAMVIEWER_API_TOKEN: 'a Key Vault reference to the secret the template writes',
  ACS_EMAIL_ENDPOINT: 'the Communication Services resource the template creates',
  ACS_EMAIL_SENDER: 'the DoNotReply address of the Azure-managed domain the template creates',
  ACS_EMAIL_CONNECTION_STRING: 'not set: emails go out with the identity (the resource\'s access keys are off)',
  STATUS_PAGE_URL: 'the Function App\'s own /api/status, from its default host name',
};

/**
 * Never set on Flex Consumption: the runtime comes from functionAppConfig, there is no content
 * share, and an AzureWebJobsStorage setting (even empty) overrides the identity-based
 * AzureWebJobsStorage__* settings.
 */
const FORBIDDEN_ON_FLEX = [
  'FUNCTIONS_WORKER_RUNTIME',
  'FUNCTIONS_EXTENSION_VERSION',
  'WEBSITE_RUN_FROM_PACKAGE',
  'WEBSITE_CONTENTSHARE',
  'WEBSITE_CONTENTAZUREFILECONNECTIONSTRING',
  'AzureWebJobsStorage',
];

/**
 * Whole-number settings whose main.bicep parameter accepts less than tvsync does, and why. Every
 * other one takes exactly tvsync's range; none may take a value tvsync refuses.
 */
const NARROWER_IN_AZURE: Record<string, string> = {
  CYCLE_TIME_BUDGET_SECONDS: 'a cycle must end within host.json functionTimeout',
};

/** Settings local.settings.json has beyond SETTING_SPECS: the Core Tools host needs the worker runtime. */
const LOCAL_ONLY_SETTINGS = ['FUNCTIONS_WORKER_RUNTIME'];

const INFRA_DIR = path.join(REPO_ROOT, 'infra');
const specNames = () => new Set(SETTING_SPECS.map((s) => s.name));

let skipReason: string | null = null;
let repoRun: BicepRun | undefined;
let template: ArmTemplate | undefined;
let settings: AppSetting[] = [];
let brokenParam: BicepRun | undefined;
let warningOnly: BicepRun | undefined;
let readmeParams: Record<string, unknown> | Error | undefined;
let alertRanges: Record<string, unknown> | Error | undefined;
const tempDirs: string[] = [];

const README = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
/** The deployment guide: README.md from its heading to the end. */
const DEPLOY_GUIDE = README.slice(README.indexOf('## Deploying tvsync to Azure'));
/** Stands in for the TeamViewer token in the environment when the guide's .bicepparam is built. */
const TOKEN_MARKER = 'marker-token-from-the-environment';

/** The first fenced block of a language after a heading of the deployment guide. */
function guideBlock(heading: string, language: string): string {
  const at = DEPLOY_GUIDE.indexOf(heading);
  if (at < 0) throw new Error(`README.md has no "${heading}" in the deployment guide`);
  const fence = '```' + language + '\n';
  const start = DEPLOY_GUIDE.indexOf(fence, at);
  if (start < 0) throw new Error(`README.md has no ${language} block after "${heading}"`);
  return DEPLOY_GUIDE.slice(start + fence.length, DEPLOY_GUIDE.indexOf('```', start + fence.length));
}

/** Builds the guide's tvsync.bicepparam where the guide puts it: beside a copy of infra/. */
async function buildGuideParams(bicep: string): Promise<Record<string, unknown>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvsync-bicepparam-'));
  tempDirs.push(dir);
  fs.cpSync(INFRA_DIR, path.join(dir, 'infra'), { recursive: true });
  const file = path.join(dir, 'tvsync.bicepparam');
  fs.writeFileSync(file, guideBlock('### Step 3', 'bicep'));
  return buildParams(bicep, file, { ...process.env, TEAMVIEWER_API_TOKEN: TOKEN_MARKER });
}

/**
 * (interval minutes, missed cycles) pairs and the query time range of the "no successful cycle"
 * rule each must get: the product rounded up to a range Azure Monitor offers, at most two days.
 */
const ALERT_RANGE_CASES: Array<[number, number, string]> = [
  [40, 3, 'PT2H'], [5, 1, 'PT15M'], [5, 3, 'PT15M'], [5, 4, 'PT20M'], [40, 1, 'PT45M'], [25, 5, 'PT3H'],
  [60, 5, 'PT5H'], [45, 8, 'PT6H'], [61, 6, 'P1D'], [60, 24, 'P1D'], [60, 25, 'P2D'], [1440, 2, 'P2D'], [1440, 1000, 'P2D'],
];

/** Evaluates alertTimeRange (infra/app/alert-range.bicep) with the Bicep CLI for every case above. */
async function buildAlertRanges(bicep: string): Promise<Record<string, unknown>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvsync-alert-range-'));
  tempDirs.push(dir);
  fs.cpSync(INFRA_DIR, path.join(dir, 'infra'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'ranges.bicep'), '#disable-next-line no-unused-params\nparam ranges object\n');
  const cases = ALERT_RANGE_CASES.map(([interval, cycles]) => `  'i${interval}x${cycles}': alertTimeRange(${interval * cycles})`).join('\n');
  fs.writeFileSync(path.join(dir, 'ranges.bicepparam'), `using 'ranges.bicep'\nimport { alertTimeRange } from 'infra/app/alert-range.bicep'\nparam ranges = {\n${cases}\n}\n`);
  return (await buildParams(bicep, path.join(dir, 'ranges.bicepparam'), process.env)).ranges as Record<string, unknown>;
}

/** A copy of infra/ with one text replacement in one file (the replacement must apply). */
function brokenCopy(file: string, from: string, to: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvsync-infra-'));
  tempDirs.push(dir);
  fs.cpSync(INFRA_DIR, dir, { recursive: true });
  const target = path.join(dir, file);
  const text = fs.readFileSync(target, 'utf8');
  if (!text.includes(from)) throw new Error(`${file} no longer contains "${from}"; update this test's mutation`);
  fs.writeFileSync(target, text.replace(from, to));
  return dir;
}

/**
 * Started when the file loads, not in a hook: the Bicep runs (several seconds of .NET start-up
 * each) then overlap with the tests that do not need them, which run first.
 */
async function prepareBicep(): Promise<void> {
  const cli = await findBicep();
  if (!cli.path) {
    skipReason = `Bicep CLI unavailable, template checks skipped (CI runs .ci/bicep.sh first, so it has one): ${cli.reason}`;
    return;
  }
  // The repo's infra, a module parameter renamed, and an unknown property (a compiler warning,
  // no error): three runs of the script CI uses, side by side.
  const failure = (err: Error & { stderr?: string }) => new Error(`${err.message}\n${err.stderr ?? ''}`);
  [repoRun, brokenParam, warningOnly, readmeParams, alertRanges] = await Promise.all([
    runBicepScript(INFRA_DIR),
    runBicepScript(brokenCopy('app/storage.bicep', 'param deploymentContainerName string', 'param containerName string')),
    runBicepScript(brokenCopy('app/function.bicep', 'httpsOnly: true', 'httpsOnly: true\n    clientCertEnabledd: false')),
    buildGuideParams(cli.path).catch(failure),
    buildAlertRanges(cli.path).catch(failure),
  ]);
  template = repoRun.template;
  if (!template) {
    // Lint failures are the first test's to report; the checks below still read the template.
    template = await compileWithoutLinter(cli.path, path.join(INFRA_DIR, 'main.bicep')).catch(() => undefined);
  }
  if (template) settings = functionAppSettings(template);
}
const bicepReady = prepareBicep().then(() => null, (err: Error) => err);

afterAll(() => {
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

function needTemplate(ctx: { skip: (note?: string) => void }): ArmTemplate {
  if (skipReason) ctx.skip(skipReason);
  expect(template, `infra/main.bicep does not compile:\n${repoRun?.output}`).toBeDefined();
  return template as ArmTemplate;
}

const setByTemplate = () => new Map(settings.map((s) => [s.name, s]));

/** Does shared/config.ts refuse this value of this setting (the required ones given)? */
function refusedByTvsync(name: string, value: string): boolean {
  const base = { AzureWebJobsStorage: 'UseDevelopmentStorage=true', ENTRA_SERVICE_PRINCIPAL_ID: '3f2b9c1e-6a4d-4e5f-9b8a-1c2d3e4f5a6b', TEAMVIEWER_API_TOKEN: 'infra-range-check-token' };
  try {
    loadSettings({ env: { ...base, [name]: value }, localSettingsDir: null });
    return false;
  } catch (err) {
    if (!(err instanceof SettingsError)) throw err;
    return err.problems.some((p) => p.setting === name);
  }
}

describe('local.settings.sample.json', () => {
  const sample = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'local.settings.sample.json'), 'utf8')) as {
    IsEncrypted: boolean;
    Values: Record<string, string>;
  };

  it('lists exactly the settings tvsync reads, plus what the local host needs', () => {
    const names = Object.keys(sample.Values);
    const known = specNames();
    const missing = [...known].filter((name) => !(name in sample.Values));
    const extra = names.filter((name) => !known.has(name) && !LOCAL_ONLY_SETTINGS.includes(name));
    expect({ missing, extra }).toEqual({ missing: [], extra: [] });
    expect(sample.IsEncrypted).toBe(false);
    expect(sample.Values.FUNCTIONS_WORKER_RUNTIME).toBe('node');
    expect(sample.Values.AzureWebJobsStorage).toBe('UseDevelopmentStorage=true');
  });

  it('works as it is when copied to local.settings.json (placeholders, no Key Vault references)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvsync-sample-'));
    try {
      fs.copyFileSync(path.join(REPO_ROOT, 'local.settings.sample.json'), path.join(dir, 'local.settings.json'));
      const loaded = loadSettings({ env: {}, localSettingsDir: dir });
      expect(loaded.storage.kind).toBe('connectionString');
      expect(loaded.syncSchedule).toBe(SETTING_SPECS.find((s) => s.name === 'SYNC_SCHEDULE')?.default);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * Core Tools reads .funcignore with its own parser (a port of codemix/gitignore-parser): every
 * pattern is matched from the start of the relative path, "!" wins over everything. Reproduced
 * here so the file is checked the way `func azure functionapp publish` reads it.
 */
function coreToolsAccepts(content: string): (relativePath: string) => boolean {
  const positive: string[] = [];
  const negative: string[] = [];
  for (let line of content.split('\n').map((l) => l.trim())) {
    if (line === '' || line.startsWith('#')) continue;
    const isNegative = line.startsWith('!');
    if (isNegative) line = line.slice(1);
    if (line.startsWith('/')) line = line.slice(1);
    (isNegative ? negative : positive).push(line);
  }
  const prepare = (pattern: string) =>
    pattern.replace(/[-[\]/{}()+?.\\^$|]/g, '\\$&').replace(/\*\*/g, '(.+)').replace(/\*/g, '([^\\/]+)');
  const compile = (patterns: string[]) => (patterns.length ? new RegExp(`^((${patterns.map(prepare).join(')|(')}))`) : /$^/);
  const pos = compile(positive);
  const neg = compile(negative);
  return (relativePath) => neg.test(relativePath) || !pos.test(relativePath);
}

describe('.funcignore', () => {
  const funcignore = fs.readFileSync(path.join(REPO_ROOT, '.funcignore'), 'utf8');
  const main = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { main: string }).main;
  const kept = [
    main.replace('*', 'sync'),
    main.replace('*', 'status'),
    'dist/shared/config.js',
    'dist/shared/config.js.map',
    'dist/shared/sync/cycle.js',
    'host.json',
    'package.json',
    'package-lock.json',
    'node_modules/@azure/functions/package.json',
    'node_modules/@azure/identity/dist/index.js',
  ];
  const dropped = [
    'functions/sync.ts',
    'shared/config.ts',
    'shared/sync/cycle.ts',
    'test/integration/infra-consistency.test.ts',
    'dist/test/support/azurite.js',
    'infra/main.bicep',
    'infra/bicepconfig.json',
    'infra/grant-graph-permissions.sh',
    '.ci/run',
    'bin/tvsync.js',
    'local.settings.json',
    'local.settings.sample.json',
    'tsconfig.json',
    'vitest.config.mts',
    'README.md',
    'tvsync.bicepparam',
    '__azurite_db_table__.json',
  ];

  it('keeps the compiled app and drops sources, tests and infra, as Core Tools reads it', () => {
    const accepts = coreToolsAccepts(funcignore);
    expect(kept.filter((p) => !accepts(p))).toEqual([]);
    expect(dropped.filter((p) => accepts(p))).toEqual([]);
  });

  it('drops every file of the repository that is not the compiled app or its manifests, under its real name', async () => {
    // What git tracks, plus the folders a build or install makes: a renamed file (vitest.config.ts
    // became .mts) shows up here instead of silently going to Azure.
    const { stdout } = await run('git', ['-C', REPO_ROOT, 'ls-files']);
    const tracked = stdout.split('\n').filter(Boolean);
    const shipped = new Set(['host.json', 'package.json', 'package-lock.json']);
    const accepts = coreToolsAccepts(funcignore);
    expect(tracked.filter((file) => accepts(file) && !shipped.has(file))).toEqual([]);
    expect([...shipped].filter((file) => !accepts(file))).toEqual([]);
  });

  it('means the same to git-style tools (the VS Code extension)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tvsync-funcignore-'));
    try {
      await run('git', ['init', '-q', dir]);
      fs.writeFileSync(path.join(dir, '.gitignore'), funcignore);
      for (const file of [...kept, ...dropped]) {
        fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
        fs.writeFileSync(path.join(dir, file), '');
      }
      const ignored = await run('git', ['-C', dir, 'check-ignore', '--no-index', ...kept, ...dropped]).then(
        ({ stdout }) => stdout,
        (err: { code?: number; stdout?: string }) => (err.code === 1 ? '' : Promise.reject(err)),
      );
      const ignoredSet = new Set(ignored.split('\n').filter(Boolean));
      expect(kept.filter((p) => ignoredSet.has(p))).toEqual([]);
      expect(dropped.filter((p) => !ignoredSet.has(p))).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * A stand-in for the Azure CLI: `az account show` and `az rest` against an in-memory Microsoft
 * Graph kept in a JSON file, with --query evaluated by jmespath (the library az itself uses) and
 * --output tsv printed as az prints it. Every `az rest` call is logged.
 */
const FAKE_AZ = String.raw`#!/usr/bin/env python3
import json, os, re, sys
import jmespath

state_path = os.environ['FAKE_AZ_STATE']
with open(state_path) as f:
    state = json.load(f)
args = sys.argv[1:]
with open(os.environ['FAKE_AZ_LOG'], 'a') as f:
    f.write(json.dumps(args) + '\n')

def opt(name):
    return args[args.index(name) + 1] if name in args else None

def emit(result):
    query = opt('--query')
    if query:
        result = jmespath.search(query, result)
    output = opt('--output') or 'json'
    if output == 'none':
        return
    if output == 'tsv':
        rows = result if isinstance(result, list) else [result]
        for row in rows:
            if row is None:
                continue
            print('\t'.join('' if c is None else str(c) for c in row) if isinstance(row, list) else str(row))
    else:
        print(json.dumps(result))

if args[:2] == ['account', 'show']:
    sys.exit(0 if state['loggedIn'] else 1)
if args[:2] == ['cloud', 'show']:
    emit(state.get('cloud', {'name': 'AzureCloud', 'endpoints': {'microsoftGraphResourceId': 'https://graph.microsoft.com/'}}))
    sys.exit(0)
if args[0] != 'rest':
    sys.exit('fake az: unsupported command ' + ' '.join(args))

method, url = opt('--method'), opt('--url')
# Only the Graph of the current cloud gets a token, as with the real az.
cloud_graph = state.get('cloud', {}).get('endpoints', {}).get('microsoftGraphResourceId', 'https://graph.microsoft.com/').rstrip('/')
if not url.startswith(cloud_graph + '/'):
    sys.stderr.write("ERROR: Can't derive appropriate Azure AD resource from --url to acquire an access token.\n")
    sys.exit(1)
path = url[len(cloud_graph) + len('/v1.0'):].split('?')[0]
skip = int((re.search(r'[?&]\$skiptoken=(\d+)', url) or [None, '0'])[1])
graph = state['graph']
result = None
m = re.fullmatch(r"/servicePrincipals\(appId='00000003-0000-0000-c000-000000000000'\)", path)
if m:
    result = {'id': graph['id'], 'appRoles': graph['appRoles']}
elif path == '/servicePrincipals/' + graph['id']:
    result = {'id': graph['id'], 'appRoles': graph['appRoles']}
else:
    m = re.fullmatch(r'/servicePrincipals/([^/]+)(/appRoleAssignments)?', path)
    sp = state['servicePrincipals'].get(m.group(1)) if m else None
    if sp is None:
        sys.stderr.write('ERROR: Not Found({"error":{"code":"Request_ResourceNotFound"}})\n')
        sys.exit(1)
    if not m.group(2):
        result = {'id': m.group(1), 'displayName': sp['displayName']}
    elif method == 'GET':
        # Graph pages the list whatever $top says; the fake does with pageSize.
        size = state.get('pageSize', 1000)
        result = {'value': sp['assignments'][skip:skip + size]}
        if skip + size < len(sp['assignments']):
            result['@odata.nextLink'] = cloud_graph + '/v1.0' + path + '?$skiptoken=' + str(skip + size)
    else:
        body_arg = opt('--body')
        with open(body_arg[1:]) as f:
            body = json.load(f)
        if state.get('failPost'):
            sys.stderr.write('ERROR: Forbidden({"error":{"code":"Authorization_RequestDenied"}})\n')
            sys.exit(1)
        sp['assignments'].append({'appRoleId': body['appRoleId'], 'resourceId': body['resourceId'], 'principalId': body['principalId']})
        result = dict(body, id='assignment-' + str(len(sp['assignments'])))
        with open(state_path, 'w') as f:
            json.dump(state, f)

emit(result)
`;

const GRAPH_SP = '1e6a3f9d-0000-4000-8000-00000000a001';
const IDENTITY = '5f1c2a3b-1111-4222-8333-444455556666';
const GRAPH_ROLES = {
  'Application.Read.All': '9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30',
  'User.Read.All': 'df021288-bdef-4463-88db-98f22de89214',
  'GroupMember.Read.All': '98830695-27a2-44f7-8c18-0c3ebc9698f6',
  'User.ReadWrite.All': '741f803b-c850-494e-b5df-cde7c675a1ca',
};

describe('grant-graph-permissions (against a stand-in az)', () => {
  let bin = '';
  let work = '';
  let hasJmespath = true;

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'tvsync-grant-'));
    bin = path.join(work, 'bin');
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, 'az'), FAKE_AZ, { mode: 0o755 });
    hasJmespath = await run('python3', ['-c', 'import jmespath']).then(() => true, () => false);
  });
  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

  function tenant(granted: string[]): string {
    const file = path.join(work, `state-${Math.random().toString(36).slice(2)}.json`);
    fs.writeFileSync(file, JSON.stringify({
      loggedIn: true,
      graph: {
        id: GRAPH_SP,
        appRoles: Object.entries(GRAPH_ROLES).map(([value, id]) => ({ value, id, allowedMemberTypes: ['Application'] })),
      },
      servicePrincipals: {
        [IDENTITY]: {
          displayName: 'id-tvsync-abc',
          // An assignment to another API with the same role id must not count as granted.
          assignments: [
            ...granted.map((role) => ({ appRoleId: GRAPH_ROLES[role as keyof typeof GRAPH_ROLES], resourceId: GRAPH_SP })),
            { appRoleId: GRAPH_ROLES['GroupMember.Read.All'], resourceId: '22222222-2222-4222-8222-222222222222' },
          ],
        },
      },
    }));
    return file;
  }

  async function grant(command: string[], stateFile: string): Promise<{ code: number; stdout: string; stderr: string; posts: string[][] }> {
    const log = `${stateFile}.log`;
    fs.writeFileSync(log, '');
    const env = { ...process.env, PATH: `${bin}${path.delimiter}${process.env.PATH}`, FAKE_AZ_STATE: stateFile, FAKE_AZ_LOG: log };
    // A bound against a hang only: every az call starts a Python process, slow on a busy machine.
    const result = await run(command[0], command.slice(1), { env, timeout: 120_000 }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (err: { code?: number; stdout?: string; stderr?: string }) => ({ code: err.code ?? -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' }),
    );
    const calls = fs.readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as string[]);
    return { ...result, posts: calls.filter((c) => c[0] === 'rest' && c.includes('POST')) };
  }

  const assignmentsOf = (stateFile: string) =>
    (JSON.parse(fs.readFileSync(stateFile, 'utf8')) as { servicePrincipals: Record<string, { assignments: Array<{ appRoleId: string; resourceId: string }> }> })
      .servicePrincipals[IDENTITY].assignments.filter((a) => a.resourceId === GRAPH_SP).map((a) => a.appRoleId).sort();

  const script = ['bash', path.join(REPO_ROOT, 'infra', 'grant-graph-permissions.sh')];

  it('grants the three permissions once, and only reports them on the next run', async (ctx) => {
    if (!hasJmespath) ctx.skip('python3 with jmespath is needed for the stand-in az');
    const state = tenant([]);
    const first = await grant([...script, IDENTITY], state);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^Application\.Read\.All +granted$/m);
    expect(first.stdout).toMatch(/^User\.Read\.All +granted$/m);
    expect(first.stdout).toMatch(/^GroupMember\.Read\.All +granted$/m);
    expect(assignmentsOf(state)).toEqual([GRAPH_ROLES['Application.Read.All'], GRAPH_ROLES['User.Read.All'], GRAPH_ROLES['GroupMember.Read.All']].sort());

    const second = await grant([...script, IDENTITY], state);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout.match(/already granted/g)).toHaveLength(3);
    expect(second.posts).toEqual([]);
  }, 150_000);

  it('with --dry-run, says what it would grant and changes nothing', async (ctx) => {
    if (!hasJmespath) ctx.skip('python3 with jmespath is needed for the stand-in az');
    const state = tenant(['User.Read.All']);
    const result = await grant([...script, '--dry-run', IDENTITY], state);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^User\.Read\.All +already granted$/m);
    expect(result.stdout).toMatch(/^Application\.Read\.All +would be granted/m);
    expect(result.stdout).toMatch(/^GroupMember\.Read\.All +would be granted/m);
    expect(result.posts).toEqual([]);
    expect(assignmentsOf(state)).toEqual([GRAPH_ROLES['User.Read.All']]);
  });

  it('stops with a message an admin can act on when the identity does not exist or a grant is refused', async (ctx) => {
    if (!hasJmespath) ctx.skip('python3 with jmespath is needed for the stand-in az');
    const missing = await grant([...script, '00000000-0000-4000-8000-000000000000'], tenant([]));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('reading service principal 00000000-0000-4000-8000-000000000000 failed');

    const refusing = tenant([]);
    const state = JSON.parse(fs.readFileSync(refusing, 'utf8')) as Record<string, unknown>;
    fs.writeFileSync(refusing, JSON.stringify({ ...state, failPost: true }));
    const refused = await grant([...script, IDENTITY], refusing);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('Authorization_RequestDenied');
    expect(refused.stderr).toContain('3 of 3 permissions could not be granted');
  });

  it('follows @odata.nextLink through every page of assignments: roles granted on a later page count as granted', async (ctx) => {
    if (!hasJmespath) ctx.skip('python3 with jmespath is needed for the stand-in az');
    const state = tenant(['Application.Read.All', 'User.Read.All', 'GroupMember.Read.All']);
    const data = JSON.parse(fs.readFileSync(state, 'utf8')) as { servicePrincipals: Record<string, { assignments: unknown[] }> };
    // Seven assignments to other APIs first, so Graph's roles are on the third page of three.
    const others = Array.from({ length: 7 }, (_, i) => ({ appRoleId: `00000000-0000-4000-8000-00000000000${i}`, resourceId: '33333333-3333-4333-8333-333333333333' }));
    data.servicePrincipals[IDENTITY].assignments = [...others, ...data.servicePrincipals[IDENTITY].assignments];
    fs.writeFileSync(state, JSON.stringify({ ...data, pageSize: 3 }));
    const result = await grant([...script, IDENTITY], state);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.match(/already granted/g)).toHaveLength(3);
    expect(result.posts).toEqual([]);
    const log = fs.readFileSync(`${state}.log`, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as string[]);
    expect(log.filter((c) => c.includes('GET') && c.some((a) => a.includes('/appRoleAssignments')))).toHaveLength(4);
  });

  it('uses the Graph of the Azure CLI\'s cloud, and stops before any call when --graph-url names another cloud\'s, saying to run az cloud set', async (ctx) => {
    if (!hasJmespath) ctx.skip('python3 with jmespath is needed for the stand-in az');
    const foreign = await grant([...script, '--graph-url', 'https://graph.microsoft.us', IDENTITY], tenant([]));
    expect(foreign.code).toBe(1);
    expect(foreign.stderr).toContain('is not the Microsoft Graph of the Azure CLI\'s current cloud (AzureCloud, https://graph.microsoft.com)');
    expect(foreign.stderr).toContain('az cloud set --name AzureUSGovernment');
    expect(foreign.posts).toEqual([]);

    const usGov = tenant([]);
    const data = JSON.parse(fs.readFileSync(usGov, 'utf8')) as Record<string, unknown>;
    fs.writeFileSync(usGov, JSON.stringify({ ...data, cloud: { name: 'AzureUSGovernment', endpoints: { microsoftGraphResourceId: 'https://graph.microsoft.us/' } } }));
    const granted = await grant([...script, IDENTITY], usGov);
    expect(granted.code, granted.stderr).toBe(0);
    expect(granted.posts).toHaveLength(3);
    expect(granted.posts.every((c) => c[c.indexOf('--url') + 1]!.startsWith('https://graph.microsoft.us/v1.0/'))).toBe(true);
  });

  it('rejects a principal id that is not a GUID without calling Azure', async () => {
    const result = await grant([...script, 'id-tvsync-abc'], tenant([]));
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('is not an object id');
  });

  it('behaves the same from PowerShell (grant-graph-permissions.ps1)', async (ctx) => {
    const pwsh = await run('pwsh', ['-NoProfile', '-Command', '$PSVersionTable.PSVersion.Major']).then(() => true, () => false);
    if (!pwsh || !hasJmespath) ctx.skip('pwsh (PowerShell 7) and python3 with jmespath are needed; CI has no pwsh');
    const ps1 = ['pwsh', '-NoProfile', '-File', path.join(REPO_ROOT, 'infra', 'grant-graph-permissions.ps1')];
    const state = tenant(['User.Read.All']);
    const dry = await grant([...ps1, IDENTITY, '-DryRun'], state);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/^Application\.Read\.All +would be granted/m);
    expect(dry.posts).toEqual([]);
    const real = await grant([...ps1, IDENTITY], state);
    expect(real.code, real.stderr).toBe(0);
    expect(real.stdout).toMatch(/^User\.Read\.All +already granted$/m);
    expect(real.stdout).toMatch(/^GroupMember\.Read\.All +granted$/m);
    expect(assignmentsOf(state)).toEqual(Object.values(GRAPH_ROLES).slice(0, 3).sort());
    const bad = await grant([...ps1, 'nope'], state);
    expect(bad.code).toBe(2);
  });
});

describe('the Bicep template', () => {
  beforeAll(async () => {
    const failed = await bicepReady;
    if (failed) throw failed;
  }, 300_000);

  it('compiles and lints with no error or warning (.ci/bicep.sh)', (ctx) => {
    needTemplate(ctx);
    expect(repoRun?.ok, repoRun?.output).toBe(true);
    expect(repoRun?.output).toMatch(/Bicep CLI version \d+\.\d+\.\d+/);
    expect(repoRun?.output).not.toMatch(/: (Warning|Error) /);
  });

  it('fails .ci/bicep.sh when a module parameter is renamed', (ctx) => {
    needTemplate(ctx);
    expect(brokenParam?.ok, brokenParam?.output).toBe(false);
    // Both ends are reported: the module no longer knows the name, main.bicep passes an unknown one.
    expect(brokenParam?.output).toMatch(/storage\.bicep.*Error BCP057: The name "deploymentContainerName" does not exist/);
    expect(brokenParam?.output).toMatch(/main\.bicep.*Error BCP\d+:.*"deploymentContainerName"/);
  });

  it('fails .ci/bicep.sh on a warning alone (an unknown property), not only on errors', (ctx) => {
    needTemplate(ctx);
    expect(warningOnly?.ok, warningOnly?.output).toBe(false);
    expect(warningOnly?.output).toMatch(/function\.bicep.*Warning BCP\d+:.*clientCertEnabledd/);
    expect(warningOnly?.output).not.toMatch(/: Error /);
  });

  it('sets every setting tvsync requires, or the alternative that excuses it', (ctx) => {
    needTemplate(ctx);
    const set = setByTemplate();
    const missing = SETTING_SPECS.filter((spec) => spec.required && !set.has(spec.name))
      .filter((spec) => !(spec.requiredUnless ?? []).some((other) => set.has(other)))
      .map((spec) => `${spec.name} is required by shared/config.ts but infra/app/function.bicep does not set it`);
    expect(missing).toEqual([]);
  });

  it('leaves unset only settings that are optional and have a default', (ctx) => {
    needTemplate(ctx);
    const set = setByTemplate();
    const problems = SETTING_SPECS.filter((spec) => !spec.required && !set.has(spec.name) && spec.default === undefined)
      .map((spec) => `${spec.name} is optional without a default and not set by the template: set it in infra/app/function.bicep or give it a default`);
    expect(problems).toEqual([]);
  });

  it('sets nothing tvsync does not read, except listed platform settings', (ctx) => {
    needTemplate(ctx);
    const known = specNames();
    const unknown = settings.map((s) => s.name)
      .filter((name) => !known.has(name) && !(name in PLATFORM_SETTINGS))
      .map((name) => `${name} is set by the template but is neither in SETTING_SPECS nor a listed platform setting`);
    expect(unknown).toEqual([]);
  });

  it('sets each setting once', (ctx) => {
    needTemplate(ctx);
    const names = settings.map((s) => s.name.toLowerCase());
    expect(names.filter((n, i) => names.indexOf(n) !== i)).toEqual([]);
  });

  it('never sets a setting Flex Consumption rejects, nor AzureWebJobsStorage itself', (ctx) => {
    needTemplate(ctx);
    const set = new Set(settings.map((s) => s.name.toLowerCase()));
    expect(FORBIDDEN_ON_FLEX.filter((name) => set.has(name.toLowerCase()))).toEqual([]);
    expect(setByTemplate().get('AzureWebJobsStorage__credential')?.value).toBe('managedidentity');
  });

  it('puts secrets in as Key Vault references, never as values', (ctx) => {
    needTemplate(ctx);
    const set = setByTemplate();
    const secrets = SETTING_SPECS.filter((spec) => spec.secret && set.has(spec.name));
    expect(secrets.map((s) => s.name)).toContain('TEAMVIEWER_API_TOKEN');
    for (const spec of secrets) {
      expect(String(set.get(spec.name)?.value), spec.name).toMatch(/^\[format\('@Microsoft\.KeyVault\(VaultName=\{0\};SecretName=\{1\}\)'/);
    }
  });

  it('uses tvsync\'s own defaults for the settings an admin can tune', (ctx) => {
    needTemplate(ctx);
    const tuned: string[] = [];
    const differences: string[] = [];
    for (const setting of settings) {
      const spec: SettingSpec | undefined = SETTING_SPECS.find((s) => s.name === setting.name);
      const parameter = sourceParameter(setting.value, setting.scope);
      if (!spec || spec.default === undefined || !parameter) continue;
      tuned.push(setting.name);
      if (parameter.defaultValue !== spec.default) {
        differences.push(`${setting.name}: main.bicep parameter ${parameter.name} defaults to "${parameter.defaultValue}", shared/config.ts to "${spec.default}"`);
      }
    }
    expect(tuned).toEqual(expect.arrayContaining(['SYNC_SCHEDULE', 'SYNC_INTERVAL_MINUTES', 'GRAPH_TIMEOUT_SECONDS', 'TEAMVIEWER_TIMEOUT_SECONDS']));
    expect(differences).toEqual([]);
  });

  it('takes every setting an admin may tune from a main.bicep parameter, so a re-deployment keeps it', (ctx) => {
    needTemplate(ctx);
    const set = setByTemplate();
    const problems = SETTING_SPECS.filter((spec) => !(spec.name in FROM_RESOURCES)).flatMap((spec) => {
      const setting = set.get(spec.name);
      if (!setting) return [`${spec.name} is not set by infra/app/function.bicep: a re-deployment would drop what an admin set by hand`];
      const parameter = sourceParameter(setting.value, setting.scope);
      return parameter ? [] : [`${spec.name} is set to ${JSON.stringify(setting.value)}, not from a main.bicep parameter`];
    });
    expect(problems).toEqual([]);
  });

  it('bounds each whole-number setting by the range tvsync accepts, so a deployable value never stops the app', (ctx) => {
    const arm = needTemplate(ctx);
    const rejected = (name: string, value: number): boolean => refusedByTvsync(name, String(value));
    const checked: string[] = [];
    const problems: string[] = [];
    for (const setting of settings) {
      const parameter = sourceParameter(setting.value, setting.scope);
      const declared = parameter ? arm.parameters?.[parameter.name] : undefined;
      if (!parameter || declared?.type !== 'int') continue;
      checked.push(setting.name);
      const { minValue: min, maxValue: max } = declared;
      if (min === undefined || max === undefined) {
        problems.push(`main.bicep parameter ${parameter.name} has no @minValue/@maxValue`);
        continue;
      }
      const edges = [[min, false], [max, false], [min - 1, true], [max + 1, true]] as const;
      for (const [value, outside] of setting.name in NARROWER_IN_AZURE ? edges.slice(0, 2) : edges) {
        if (rejected(setting.name, value) !== outside) {
          problems.push(`${setting.name}=${value}: main.bicep ${parameter.name} ${outside ? 'refuses' : 'accepts'} it, shared/config.ts ${outside ? 'accepts' : 'refuses'} it`);
        }
      }
    }
    expect(checked).toEqual(expect.arrayContaining(['QUARANTINE_FAILURE_PERCENT', 'QUARANTINE_MIN_FAILURES', 'ALERT_AFTER_MISSED_CYCLES', 'SYNC_INTERVAL_MINUTES', 'GRAPH_TIMEOUT_SECONDS', 'TEAMVIEWER_TIMEOUT_SECONDS']));
    expect(problems).toEqual([]);
  });

  it('lets every string setting with allowed values or a length limit take only values tvsync accepts', (ctx) => {
    const arm = needTemplate(ctx);
    const refused = refusedByTvsync;
    const checked: string[] = [];
    const problems: string[] = [];
    for (const setting of settings) {
      const parameter = sourceParameter(setting.value, setting.scope);
      const declared = parameter ? arm.parameters?.[parameter.name] : undefined;
      if (!parameter || declared?.type !== 'string' || (declared.allowedValues === undefined && declared.maxLength === undefined)) continue;
      checked.push(setting.name);
      for (const value of (declared.allowedValues ?? []).map(String)) {
        if (refused(setting.name, value)) problems.push(`${setting.name}=${value}: main.bicep ${parameter.name} allows it, shared/config.ts refuses it`);
      }
      // A free-text cap (no minimum): any text that long must do. Fixed-length ids are checked elsewhere.
      if (declared.maxLength !== undefined && declared.minLength === undefined && refused(setting.name, 'x'.repeat(declared.maxLength))) {
        problems.push(`${setting.name}: main.bicep ${parameter.name} takes ${declared.maxLength} characters, shared/config.ts refuses that many`);
      }
    }
    expect(checked).toEqual(expect.arrayContaining(['SYNC_SCOPE', 'LOG_LEVEL', 'GROUP_PROVISIONING', 'GROUP_NAME_PREFIX', 'DRIFT_CHECK']));
    expect(problems).toEqual([]);
  });

  it('keeps a cycle\'s time budget, plus the request timeout a call in flight may still use, inside the host\'s function timeout', (ctx) => {
    const arm = needTemplate(ctx);
    const parameterOf = (setting: string) => {
      const set = setByTemplate().get(setting);
      const parameter = set && sourceParameter(set.value, set.scope);
      expect(parameter, `${setting} does not come from a main.bicep parameter`).toBeTruthy();
      return arm.parameters?.[parameter!.name];
    };
    const timeout = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'host.json'), 'utf8')) as { functionTimeout: string }).functionTimeout;
    const [h, m, sec] = timeout.split(':').map(Number);
    const budget = parameterOf('CYCLE_TIME_BUDGET_SECONDS')?.maxValue;
    const callTimeout = parameterOf('TEAMVIEWER_TIMEOUT_SECONDS')?.maxValue;
    expect(typeof budget === 'number' && typeof callTimeout === 'number').toBe(true);
    expect(Number(budget) + Number(callTimeout)).toBeLessThan(h * 3600 + m * 60 + sec);
  });

  it('sends the failure emails with the identity, through the Communication Services resource it creates, never with a key', (ctx) => {
    const arm = needTemplate(ctx);
    const set = setByTemplate();
    expect(set.has('ACS_EMAIL_CONNECTION_STRING')).toBe(false);
    const endpoint = set.get('ACS_EMAIL_ENDPOINT');
    const sender = set.get('ACS_EMAIL_SENDER');
    const endpointSource = endpoint && moduleOutputSource(endpoint.value, endpoint.scope);
    expect(endpointSource?.output, String(endpoint?.value)).toBe('endpoint');
    expect(sender && moduleOutputSource(sender.value, sender.scope)).toEqual({ module: endpointSource?.module, output: 'senderAddress' });
    // That module holds the resource, which takes Entra ID tokens only.
    const module = [...armResources(arm)].find(({ resource }) => resource.type === 'Microsoft.Resources/deployments' && resource.name === endpointSource?.module)?.resource;
    const service = module?.properties?.template && [...armResources(module.properties.template)].map(({ resource }) => resource).find((r) => r.type === 'Microsoft.Communication/communicationServices');
    expect(service?.properties?.disableLocalAuth).toBe(true);
    // DefaultAzureCredential in the app picks the identity the template creates.
    expect(set.get('AZURE_CLIENT_ID')?.value).toBe(set.get('AzureWebJobsStorage__clientId')?.value);
  });

  it('links the emails to the status endpoint of the app it deploys, wherever the platform puts its host name', (ctx) => {
    const arm = needTemplate(ctx);
    const site = [...armResources(arm)].find(({ resource }) => resource.type === 'Microsoft.Web/sites')?.resource;
    const url = /^\[format\('https:\/\/\{0\}\/api\/(\w+)', reference\(resourceId\('Microsoft\.Web\/sites', (.+?)\), '[^']+'\)\.defaultHostName\)\]$/.exec(String(setByTemplate().get('STATUS_PAGE_URL')?.value));
    expect(url, String(setByTemplate().get('STATUS_PAGE_URL')?.value)).not.toBeNull();
    expect(`[${url?.[2]}]`).toBe(site?.name);
    const routes = [...fs.readFileSync(path.join(REPO_ROOT, 'functions', 'status.ts'), 'utf8').matchAll(/route: '([^']+)'/g)].map((m) => m[1]);
    expect(routes).toContain(url?.[1]);
  });

  it('pauses the timer of the function that exists, and leaves it running by default', (ctx) => {
    needTemplate(ctx);
    // The setting names the function; a name that matches no function pauses nothing.
    const timerNames = [...fs.readFileSync(path.join(REPO_ROOT, 'functions', 'sync.ts'), 'utf8').matchAll(/app\.timer\('([^']+)'/g)].map((m) => m[1]);
    expect(timerNames).toEqual(['sync']);
    const pause = setByTemplate().get(`AzureWebJobs.${timerNames[0]}.Disabled`);
    expect(pause, 'AzureWebJobs.sync.Disabled is not set by the template').toBeDefined();
    expect(sourceParameter(pause?.value, pause!.scope)).toEqual({ name: 'syncDisabled', defaultValue: 'false' });
  });

  it('documents every main.bicep parameter, and no other, in the deployment guide\'s table', (ctx) => {
    const arm = needTemplate(ctx);
    const declared = Object.keys(arm.parameters ?? {}).sort();
    const table = DEPLOY_GUIDE.slice(DEPLOY_GUIDE.indexOf('| Parameter | Default | Meaning |'));
    const documented = [...table.slice(0, table.indexOf('\n\n')).matchAll(/^\| `([A-Za-z]+)` \|/gm)].map((m) => m[1]).sort();
    expect(documented).toEqual(declared);
  });

  it('builds the guide\'s tvsync.bicepparam: known parameters, the token only from the environment, a scoping filter tvsync accepts', (ctx) => {
    const arm = needTemplate(ctx);
    if (readmeParams instanceof Error) throw readmeParams;
    const params = readmeParams as Record<string, unknown>;
    expect(Object.keys(params).filter((name) => !(name in (arm.parameters ?? {})))).toEqual([]);
    expect(params.teamViewerApiToken).toBe(TOKEN_MARKER);
    // Unset on a re-deployment: empty, which keeps the stored secret (no default would fail the build).
    expect(guideBlock('### Step 3', 'bicep')).toContain("readEnvironmentVariable('TEAMVIEWER_API_TOKEN', '')");
    expect(parseScopingFilters(String(params.scopingFilters)).length).toBeGreaterThan(0);
    expect(String(params.entraServicePrincipalId)).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('has the outputs the deployment guide uses', (ctx) => {
    const arm = needTemplate(ctx);
    const outputs = arm.outputs ?? {};
    expect(Object.keys(outputs)).toEqual(expect.arrayContaining(['functionAppName', 'statusUrl', 'senderAddress', 'identityPrincipalId', 'keyVaultName', 'storageAccountName']));
    expect(String(outputs.statusUrl.value)).toMatch(/^\[format\('https:\/\/\{0\}\/api\/status'/);
    // senderAddress is the communication module's output, the DoNotReply address of the managed domain.
    const module = /^\[reference\(resourceId\('Microsoft\.Resources\/deployments', '([^']+)'\).*\.outputs\.senderAddress\.value\]$/.exec(String(outputs.senderAddress.value));
    expect(module, String(outputs.senderAddress.value)).not.toBeNull();
    const communication = [...armResources(arm)].find(({ resource }) => resource.name === module?.[1])?.resource;
    expect(String(communication?.properties?.template?.outputs?.senderAddress.value)).toMatch(/^\[format\('DoNotReply@\{0\}'/);
  });
});

/** The nested template of a module of main.bicep, with the values main.bicep passes it. */
function moduleOf(arm: ArmTemplate, name: string): { template: ArmTemplate; scope: ArmScope; resources: ArmResource[] } {
  const found = [...armResources(arm)].find(({ resource }) => resource.type === 'Microsoft.Resources/deployments' && resource.name === name);
  const template = found?.resource.properties?.template;
  if (!found || !template) throw new Error(`main.bicep has no module deployment named ${name}`);
  const scope: ArmScope = { template, values: found.resource.properties?.parameters ?? {}, parent: found.scope };
  return { template, scope, resources: [...armResources(template, scope)].map(({ resource }) => resource) };
}

describe('the watchdog outside the app (infra/app/alerts.bicep)', () => {
  beforeAll(async () => {
    const failed = await bicepReady;
    if (failed) throw failed;
  }, 300_000);

  it('takes its recipients, interval, missed cycles and pause from the same parameters as the app, and watches the app\'s own Application Insights', (ctx) => {
    const arm = needTemplate(ctx);
    const alerts = moduleOf(arm, 'tvsync-alerts');
    const monitoring = moduleOf(arm, 'tvsync-monitoring');
    const from = (module: typeof alerts, name: string) => sourceParameter(module.scope.values?.[name]?.value, module.scope.parent!)?.name;
    expect(from(alerts, 'notifyEmailTo')).toBe('notifyEmailTo');
    expect(from(alerts, 'syncIntervalMinutes')).toBe('syncIntervalMinutes');
    expect(from(alerts, 'alertAfterMissedCycles')).toBe('alertAfterMissedCycles');
    expect(from(alerts, 'syncDisabled')).toBe('syncDisabled');
    // The same settings reach the app, so the app's emails and Azure Monitor count alike.
    expect(sourceParameter(setByTemplate().get('NOTIFY_EMAIL_TO')?.value, setByTemplate().get('NOTIFY_EMAIL_TO')!.scope)?.name).toBe('notifyEmailTo');
    expect(sourceParameter(setByTemplate().get('ALERT_AFTER_MISSED_CYCLES')?.value, setByTemplate().get('ALERT_AFTER_MISSED_CYCLES')!.scope)?.name).toBe('alertAfterMissedCycles');
    // The component the rules query is the one the monitoring module creates.
    expect(alerts.scope.values?.appInsightsName?.value).toBe(monitoring.scope.values?.appInsightsName?.value);
    const rules = alerts.resources.filter((r) => r.type === 'Microsoft.Insights/scheduledQueryRules');
    expect(rules).toHaveLength(2);
    for (const rule of rules) {
      const props = rule.properties as Record<string, any>;
      expect(props.scopes).toEqual(["[resourceId('Microsoft.Insights/components', parameters('appInsightsName'))]"]);
      expect((rule as ArmResource & { kind?: string }).kind).toBe('LogAlert');
      expect(props.actions.actionGroups).toBe("[variables('actionGroupIds')]");
    }
  });

  it('emails through an action group that exists only when notifyEmailTo names someone, one receiver per address', (ctx) => {
    const alerts = moduleOf(needTemplate(ctx), 'tvsync-alerts');
    const group = alerts.resources.find((r) => r.type === 'Microsoft.Insights/actionGroups') as ArmResource & { condition?: string };
    expect(group?.condition).toBe("[not(empty(variables('recipients')))]");
    const vars = (alerts.template as ArmTemplate & { variables: Record<string, string> }).variables;
    expect(vars.recipients).toMatch(/split\(parameters\('notifyEmailTo'\), ','\)/);
    expect(vars.recipients).toMatch(/trim\(/);
    expect(vars.actionGroupIds).toMatch(/^\[if\(empty\(variables\('recipients'\)\), createArray\(\), createArray\(resourceId\('Microsoft\.Insights\/actionGroups'/);
    const receivers = (group.properties as Record<string, any>).copy.find((c: { name: string }) => c.name === 'emailReceivers');
    expect(receivers.count).toBe("[length(variables('recipients'))]");
    expect(receivers.input.emailAddress).toBe("[variables('recipients')[copyIndex('emailReceivers')]]");
  });

  it('alerts when no cycle record with a successful result arrives, in the format the app writes, and is off while the timer is paused', (ctx) => {
    const alerts = moduleOf(needTemplate(ctx), 'tvsync-alerts');
    const rule = alerts.resources.find((r) => r.type === 'Microsoft.Insights/scheduledQueryRules' && String((r.properties as any).displayName).includes('no successful cycle'))!;
    const props = rule.properties as Record<string, any>;
    const query = (alerts.template as ArmTemplate & { variables: Record<string, string> }).variables[/variables\('(\w+)'\)/.exec(props.criteria.allOf[0].query)![1]!]!;
    expect(query).toContain(`where message startswith ${JSON.stringify(CYCLE_RECORD_PREFIX)}`);
    expect(query).toContain(`parse_json(substring(message, strlen(${JSON.stringify(CYCLE_RECORD_PREFIX)})))`);
    // The app's own "no successful cycle" email counts succeeded and partial cycles (shared/notify/alerts.ts).
    expect(query).toContain('in ("succeeded", "partial")');
    expect(fs.readFileSync(path.join(REPO_ROOT, 'shared', 'notify', 'alerts.ts'), 'utf8')).toMatch(/c\.result === 'succeeded' \|\| c\.result === 'partial'/);
    expect(props.criteria.allOf[0]).toMatchObject({ operator: 'LessThan', threshold: 1, metricMeasureColumn: 'successfulCycles', timeAggregation: 'Total' });
    expect(props.enabled).toBe("[not(parameters('syncDisabled'))]");
    expect(props.overrideQueryTimeRange).toBe("[variables('noSuccessRange')]");
    expect((alerts.template as ArmTemplate & { variables: Record<string, string> }).variables.noSuccessRange).toMatch(/alertTimeRange\(mul\(parameters\('syncIntervalMinutes'\), parameters\('alertAfterMissedCycles'\)\)\)/);
  });

  it('looks back syncIntervalMinutes x alertAfterMissedCycles, rounded up to a range Azure Monitor offers and at most two days', (ctx) => {
    needTemplate(ctx);
    if (alertRanges instanceof Error) throw alertRanges;
    const minutes: Record<string, number> = { PT15M: 15, PT20M: 20, PT30M: 30, PT45M: 45, PT1H: 60, PT2H: 120, PT3H: 180, PT4H: 240, PT5H: 300, PT6H: 360, P1D: 1440, P2D: 2880 };
    for (const [interval, cycles, expected] of ALERT_RANGE_CASES) {
      const got = String(alertRanges?.[`i${interval}x${cycles}`]);
      expect(got, `${interval} min x ${cycles}`).toBe(expected);
      // Never earlier than the app would call the cycles missed, unless that is beyond two days.
      expect(minutes[got]).toBeGreaterThanOrEqual(Math.min(interval * cycles, 2880));
    }
  });

  it('alerts on a failed run of the sync timer that functions/ registers', (ctx) => {
    const alerts = moduleOf(needTemplate(ctx), 'tvsync-alerts');
    const rule = alerts.resources.find((r) => r.type === 'Microsoft.Insights/scheduledQueryRules' && String((r.properties as any).displayName).includes('sync failed'))!;
    const props = rule.properties as Record<string, any>;
    const query = (alerts.template as ArmTemplate & { variables: Record<string, string> }).variables[/variables\('(\w+)'\)/.exec(props.criteria.allOf[0].query)![1]!]!;
    const timer = /app\.timer\('([^']+)'/.exec(fs.readFileSync(path.join(REPO_ROOT, 'functions', 'sync.ts'), 'utf8'))![1];
    expect(query).toContain(`where name == "${timer}" and success == false`);
    expect(props.criteria.allOf[0]).toMatchObject({ operator: 'GreaterThan', threshold: 0, metricMeasureColumn: 'failedInvocations' });
    expect(props.enabled).toBe(true);
  });

  it('grants the identity no queue role, since tvsync registers only timer and HTTP triggers (the host needs queues only for blob triggers and Durable Functions)', (ctx) => {
    const roles = moduleOf(needTemplate(ctx), 'tvsync-roles');
    const assigned = roles.resources.filter((r) => r.type === 'Microsoft.Authorization/roleAssignments');
    expect(assigned.length).toBeGreaterThanOrEqual(4);
    const variables = JSON.stringify((roles.template as ArmTemplate & { variables?: unknown }).variables ?? {});
    const QUEUE_ROLES = ['974c5e8b-45b9-4653-ba55-5f855dd0fb88', '19e7f393-937e-4f77-808e-94535e297925', '8a0f0c08-91a1-4084-bc3d-661d67233fed', 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a'];
    for (const id of QUEUE_ROLES) expect(variables + JSON.stringify(assigned)).not.toContain(id);
    const triggers = fs.readdirSync(path.join(REPO_ROOT, 'functions')).flatMap((file) => [...fs.readFileSync(path.join(REPO_ROOT, 'functions', file), 'utf8').matchAll(/\bapp\.(\w+)\(/g)].map((m) => m[1]));
    expect(new Set(triggers)).toEqual(new Set(['http', 'timer']));
  });

  it('keeps the cycle record in Application Insights: host.json lets function lines through at Information and never samples traces', () => {
    const host = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'host.json'), 'utf8')) as { logging: { logLevel: Record<string, string>; applicationInsights: { samplingSettings: { excludedTypes: string } } } };
    // The Node worker's lines arrive in category Function.<name>.User; the most specific prefix rule wins.
    const level = ['Function.sync.User', 'Function.sync', 'Function', 'default'].map((c) => host.logging.logLevel[c]).find(Boolean);
    expect(['Trace', 'Debug', 'Information']).toContain(level);
    expect(host.logging.applicationInsights.samplingSettings.excludedTypes.split(';')).toEqual(expect.arrayContaining(['Request', 'Trace']));
  });
});
