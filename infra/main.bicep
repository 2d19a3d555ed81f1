// tvsync: provisions Microsoft Entra ID users into TeamViewer (SCIM 2.0) from Azure Functions.
//
// Deploys into an existing resource group (see README.md, "Deploying tvsync to Azure"), with the
// admin's settings kept in a .bicepparam file so that every re-deployment repeats them:
//   az deployment group create -g <rg> -f infra/main.bicep -p tvsync.bicepparam
// Every tvsync setting an admin may tune is a parameter here: a deployment replaces all app
// settings, so a setting changed only in the portal would be lost on the next one.
// What Bicep cannot do (granting Microsoft Graph application permissions to the identity) is done
// afterwards by infra/grant-graph-permissions.sh (or .ps1).

targetScope = 'resourceGroup'

@description('Short name put in front of every resource name: 3-10 lowercase letters and digits (it is also part of the storage account name).')
@minLength(3)
@maxLength(10)
param prefix string = 'tvsync'

@description('Azure region for everything except the Communication Services resources (which are global). Flex Consumption must be offered there.')
param location string = resourceGroup().location

@description('Object id of the TeamViewer enterprise application\'s service principal (Entra admin center > Enterprise applications > TeamViewer > Object ID). Becomes ENTRA_SERVICE_PRINCIPAL_ID.')
@minLength(36)
@maxLength(36)
param entraServicePrincipalId string

@secure()
@description('TeamViewer script token with User management (create, edit, view users) and Account management (view account data: tvsync reads the token\'s own account so that it never deactivates it). Optional: left empty, the Key Vault secret is not created or changed and you set it afterwards (README.md, "Deploying tvsync to Azure"). Pass it from an environment variable (readEnvironmentVariable in a .bicepparam file), never written into a file.')
param teamViewerApiToken string = ''

@description('Recipients (comma-separated) of the failure emails: quarantine entered or its reason changed, deactivations held back, no successful cycle for alertAfterMissedCycles intervals, and one email when all is well again. Sent from the DoNotReply address of the Azure-managed domain (output senderAddress). Empty: no email is sent. Becomes NOTIFY_EMAIL_TO. The same addresses get the Azure Monitor alerts (infra/app/alerts.bicep); empty: the alert rules only show in the portal.')
param notifyEmailTo string = ''

@description('Email when no cycle has succeeded for this many sync intervals, including a deployment that has never completed one (1-1000). Becomes ALERT_AFTER_MISSED_CYCLES, and sets the window of the "no successful cycle" alert rule (at most two days).')
@minValue(1)
@maxValue(1000)
param alertAfterMissedCycles int = 3

@description('NCRONTAB (6 fields) of the timer heartbeat; each beat runs a cycle when one is due. Becomes SYNC_SCHEDULE.')
param syncSchedule string = '0 */5 * * * *'

@description('Minutes between the starts of two sync cycles (5-1440). Becomes SYNC_INTERVAL_MINUTES.')
@minValue(5)
@maxValue(1440)
param syncIntervalMinutes int = 40

@description('The most TeamViewer calls in flight at once (1-64); tvsync starts at 4, adds one while TeamViewer does not throttle and halves when it does. Becomes TEAMVIEWER_CONCURRENCY.')
@minValue(1)
@maxValue(64)
param teamViewerConcurrency int = 16

@description('Seconds one TeamViewer request may take before it is abandoned (1-300); a timed-out request is tried at most 3 times. Becomes TEAMVIEWER_TIMEOUT_SECONDS.')
@minValue(1)
@maxValue(300)
param teamViewerTimeoutSeconds int = 30

@description('Seconds one Microsoft Graph request, or one managed-identity token request, may take before it is abandoned (1-300); a timed-out request is tried at most 3 times. Becomes GRAPH_TIMEOUT_SECONDS.')
@minValue(1)
@maxValue(300)
param graphTimeoutSeconds int = 30

@description('Log level of tvsync itself. Becomes LOG_LEVEL. host.json still keeps debug lines out of Application Insights.')
@allowed([
  'debug'
  'info'
  'warn'
  'error'
])
param logLevel string = 'info'

@description('Which Entra users are in scope. assigned: users assigned to the TeamViewer enterprise application directly or through a group (Entra\'s default); all: every user in the tenant, narrowed by scopingFilters. Becomes SYNC_SCOPE.')
@allowed([
  'assigned'
  'all'
])
param syncScope string = 'assigned'

@description('true: also members of groups nested inside assigned groups (Entra cannot do this); false: direct members only, as Entra does. Becomes EXPAND_NESTED_GROUPS.')
param expandNestedGroups bool = false

@description('Entra-style scoping filters as JSON (README.md, "Scoping filters"). Empty: everyone in scope. Becomes SCOPING_FILTERS.')
param scopingFilters string = ''

@description('Attribute mappings as JSON, replacing the TeamViewer gallery defaults (README.md, "Attribute mappings"). Empty: the defaults. Becomes ATTRIBUTE_MAPPINGS.')
param attributeMappings string = ''

@description('true: users who leave scope (unassigned or filtered out) stay active in TeamViewer; disabled and deleted Entra accounts are still deactivated. Becomes SKIP_OUT_OF_SCOPE_DELETIONS.')
param skipOutOfScopeDeletions bool = false

@description('assigned: every group assigned to the TeamViewer enterprise application becomes a TeamViewer user group with the provisioned members (the token needs User groups: create, delete, edit, read; the company a Tensor licence); off: users only. Becomes GROUP_PROVISIONING.')
@allowed([
  'off'
  'assigned'
])
param groupProvisioning string = 'off'

@description('Put before the Entra display name to make the TeamViewer group name; at most 50 characters, trailing spaces kept. Becomes GROUP_NAME_PREFIX.')
@maxLength(50)
param groupNamePrefix string = ''

@description('Roles for groups as JSON: [{"group": "<Entra group object id or exact display name>", "role": "<TeamViewer role name or id>"}]. Empty: roles are left alone. Becomes GROUP_ROLES.')
param groupRoles string = ''

@description('Accidental-deletion guard: most deactivations one cycle may apply, a count (500, Entra\'s default) or a share of the managed users (for example 15%). Above it they are all held back until `tvsync allow-deactivations`. Becomes DEACTIVATION_THRESHOLD.')
param deactivationThreshold string = '500'

@description('When Entra returns this percentage fewer users in scope than the last good read, or more, deactivations are held back as a suspicious read; a drop of under 10 users needs half, and a read with no user in scope always holds (0-99; 0 turns the check off). Becomes SUSPICIOUS_DROP_PERCENT.')
@minValue(0)
@maxValue(99)
param suspiciousDropPercent int = 25

@description('Quarantine, as Entra does, when more than this percentage of a cycle\'s changes failed and at least quarantineMinFailures did (1-100). Becomes QUARANTINE_FAILURE_PERCENT.')
@minValue(1)
@maxValue(100)
param quarantineFailurePercent int = 40

@description('The failure-share rule (quarantineFailurePercent) applies from this many failed changes in one cycle; Entra uses 5,000 (1-1000000). Becomes QUARANTINE_MIN_FAILURES.')
@minValue(1)
@maxValue(1000000)
param quarantineMinFailures int = 5000

@description('Seconds after which a cycle starts no new work (counted from its start; reading must end by then); the next timer beat continues where it stopped, and a request still in flight is cut off one TeamViewer timeout later. At most 1440 here, so that budget plus timeout always ends within host.json\'s functionTimeout (30 minutes). Becomes CYCLE_TIME_BUDGET_SECONDS.')
@minValue(1)
@maxValue(1440)
param cycleTimeBudgetSeconds int = 540

@description('When changes made in TeamViewer by hand to managed users (a leaver re-enabled, a display name edited) are put back: every-cycle (every quiet cycle lists TeamViewer), daily (at the daily full read) or off (left as they are). Becomes DRIFT_CHECK.')
@allowed([
  'every-cycle'
  'daily'
  'off'
])
param driftCheck string = 'every-cycle'

@description('Days provisioning logs are kept in Table Storage (1-3650). Becomes LOG_RETENTION_DAYS.')
@minValue(1)
@maxValue(3650)
param provisioningLogRetentionDays int = 30

@description('Microsoft Graph root; change it only for a national cloud (for example https://graph.microsoft.us; grant the permissions with `az cloud set` to that cloud first, see README.md step 4). Becomes GRAPH_BASE_URL.')
param graphBaseUrl string = 'https://graph.microsoft.com'

@description('TeamViewer SCIM 2.0 base URL. Becomes TEAMVIEWER_SCIM_URL.')
param teamViewerScimUrl string = 'https://webapi.teamviewer.com/scim/v2'

@description('Prefix of the state tables (letters and digits, starting with a letter, at most 20). Changing it later starts from empty state, as a first deployment does. Becomes STATE_TABLE_PREFIX.')
@minLength(1)
@maxLength(20)
param stateTablePrefix string = 'tvsync'

@description('Pause tvsync: true sets AzureWebJobs.sync.Disabled, so the sync timer does not fire (GET /api/status still answers). Deploy again with false to resume.')
param syncDisabled bool = false

@description('Node.js major version of the Functions runtime (Node.js 20 is no longer supported on Azure Functions).')
@allowed([
  '22'
])
param nodeVersion string = '22'

@description('Most instances the Function App may scale out to. The sync timer runs on one instance at a time whatever this is; it bounds HTTP scale-out (and cost).')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory per Flex Consumption instance, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Key Vault purge protection. On (the default), a deleted vault and its name are kept for softDeleteRetentionInDays and cannot be purged; it can never be turned off again. Use false for a throw-away trial deployment.')
param enablePurgeProtection bool = true

@description('Days a deleted Key Vault or secret can be recovered (7-90). Set once: Azure takes it only when the vault is created and refuses a different value on a re-deployment, so keep the value of the first deployment.')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

@description('Where Azure Communication Services keeps email data at rest (the resources themselves are global). Pick the geography of `location` (Europe for westeurope, United States for eastus ...) so that data stays where the rest of tvsync is.')
@allowed([
  'Africa'
  'Asia Pacific'
  'Australia'
  'Brazil'
  'Canada'
  'Europe'
  'France'
  'Germany'
  'India'
  'Japan'
  'Korea'
  'Norway'
  'Switzerland'
  'UAE'
  'UK'
  'United States'
])
param communicationDataLocation string = 'Europe'

@description('Role that lets the identity send email. custom (default): a custom role with only the send actions; creating it needs Owner or User Access Administrator on the resource group. builtin: "Communication and Email Service Owner" (broader: it can also read keys and delete the resource).')
@allowed([
  'custom'
  'builtin'
])
param emailSenderRole string = 'custom'

@description('Days Log Analytics keeps logs (30-730).')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

@description('Tags put on every resource.')
param tags object = {}

// Stable per resource group, so a re-deployment updates the same resources.
var suffix = uniqueString(resourceGroup().id, prefix)
var names = {
  identity: 'id-${prefix}-${suffix}'
  storage: take(toLower('st${prefix}${suffix}'), 24)
  keyVault: 'kv-${prefix}-${take(suffix, 8)}'
  workspace: 'log-${prefix}-${suffix}'
  appInsights: 'appi-${prefix}-${suffix}'
  emailService: 'ecs-${prefix}-${suffix}'
  communicationService: 'acs-${prefix}-${suffix}'
  plan: 'plan-${prefix}-${suffix}'
  functionApp: 'func-${prefix}-${suffix}'
  actionGroup: 'ag-${prefix}-${suffix}'
  alertNoSuccessfulCycle: 'alert-${prefix}-no-success-${suffix}'
  alertSyncFailed: 'alert-${prefix}-sync-failed-${suffix}'
}
var allTags = union(tags, { application: 'tvsync' })
var tokenSecretName = 'teamviewer-api-token'

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: names.identity
  location: location
  tags: allTags
}

module storage 'app/storage.bicep' = {
  name: 'tvsync-storage'
  params: {
    name: names.storage
    location: location
    tags: allTags
    deploymentContainerName: 'app-package'
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'tvsync-monitoring'
  params: {
    appInsightsName: names.appInsights
    workspaceName: names.workspace
    location: location
    tags: allTags
    retentionInDays: logRetentionDays
  }
}

// Azure Monitor's watchdog: alert rules on Application Insights, emailing notifyEmailTo.
module alerts 'app/alerts.bicep' = {
  name: 'tvsync-alerts'
  params: {
    appInsightsName: names.appInsights
    location: location
    tags: allTags
    actionGroupName: names.actionGroup
    noSuccessfulCycleRuleName: names.alertNoSuccessfulCycle
    syncFailedRuleName: names.alertSyncFailed
    notifyEmailTo: notifyEmailTo
    syncIntervalMinutes: syncIntervalMinutes
    alertAfterMissedCycles: alertAfterMissedCycles
    syncDisabled: syncDisabled
  }
  // A name goes in, as for the roles (What-If can then predict the rules); the component must exist.
  dependsOn: [
    monitoring
  ]
}

module keyVault 'app/keyvault.bicep' = {
  name: 'tvsync-keyvault'
  params: {
    name: names.keyVault
    location: location
    tags: allTags
    tokenSecretName: tokenSecretName
    teamViewerApiToken: teamViewerApiToken
    enablePurgeProtection: enablePurgeProtection
    softDeleteRetentionInDays: softDeleteRetentionInDays
  }
}

module communication 'app/communication.bicep' = {
  name: 'tvsync-communication'
  params: {
    communicationServiceName: names.communicationService
    emailServiceName: names.emailService
    dataLocation: communicationDataLocation
    tags: allTags
  }
}

// Names, not outputs, go in: What-If can then predict every role assignment. The explicit
// dependsOn keeps the order the outputs would have given.
module roles 'app/roles.bicep' = {
  name: 'tvsync-roles'
  params: {
    identityName: names.identity
    storageAccountName: names.storage
    keyVaultName: names.keyVault
    appInsightsName: names.appInsights
    communicationServiceName: names.communicationService
    emailSenderRole: emailSenderRole
  }
  dependsOn: [
    identity
    storage
    keyVault
    monitoring
    communication
  ]
}

module functionApp 'app/function.bicep' = {
  name: 'tvsync-function'
  params: {
    name: names.functionApp
    planName: names.plan
    location: location
    tags: allTags
    identityId: identity.id
    identityClientId: identity.properties.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    appInsightsConnectionString: monitoring.outputs.connectionString
    keyVaultName: keyVault.outputs.name
    tokenSecretName: tokenSecretName
    nodeVersion: nodeVersion
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    entraServicePrincipalId: entraServicePrincipalId
    syncSchedule: syncSchedule
    syncIntervalMinutes: syncIntervalMinutes
    teamViewerConcurrency: teamViewerConcurrency
    teamViewerTimeoutSeconds: teamViewerTimeoutSeconds
    graphTimeoutSeconds: graphTimeoutSeconds
    logLevel: logLevel
    syncScope: syncScope
    expandNestedGroups: expandNestedGroups
    scopingFilters: scopingFilters
    attributeMappings: attributeMappings
    skipOutOfScopeDeletions: skipOutOfScopeDeletions
    groupProvisioning: groupProvisioning
    groupNamePrefix: groupNamePrefix
    groupRoles: groupRoles
    deactivationThreshold: deactivationThreshold
    suspiciousDropPercent: suspiciousDropPercent
    provisioningLogRetentionDays: provisioningLogRetentionDays
    graphBaseUrl: graphBaseUrl
    teamViewerScimUrl: teamViewerScimUrl
    stateTablePrefix: stateTablePrefix
    syncDisabled: syncDisabled
    emailEndpoint: communication.outputs.endpoint
    emailSender: communication.outputs.senderAddress
    notifyEmailTo: notifyEmailTo
    alertAfterMissedCycles: alertAfterMissedCycles
    quarantineFailurePercent: quarantineFailurePercent
    quarantineMinFailures: quarantineMinFailures
    cycleTimeBudgetSeconds: cycleTimeBudgetSeconds
    driftCheck: driftCheck
  }
  // The host starts as soon as the site exists: its storage, Key Vault and telemetry roles must
  // be in place first, or the first start fails and the Key Vault reference stays unresolved.
  dependsOn: [
    roles
  ]
}

@description('Name of the Function App: use it with `func azure functionapp publish`.')
output functionAppName string = functionApp.outputs.name

@description('Health endpoint, also linked from the failure emails (STATUS_PAGE_URL); call it with a function key (header x-functions-key, or ?code=).')
output statusUrl string = 'https://${functionApp.outputs.defaultHostName}/api/status'

@description('Address the failure emails are sent from (to notifyEmailTo).')
output senderAddress string = communication.outputs.senderAddress

@description('Object (principal) id of the managed identity: pass it to infra/grant-graph-permissions.sh.')
output identityPrincipalId string = identity.properties.principalId

@description('Key Vault holding the TeamViewer token (secret teamviewer-api-token).')
output keyVaultName string = keyVault.outputs.name

@description('Storage account with the state tables.')
output storageAccountName string = storage.outputs.name
