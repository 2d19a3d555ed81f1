// The tvsync Function App on a Flex Consumption (FC1, Linux) plan.
//
// Invariant: the `appsettings` config resource below is the complete set of settings the app gets
// in Azure (each deployment replaces them all). Each name is either read by tvsync
// (shared/config.ts SETTING_SPECS) or used by the Functions platform;
// test/integration/infra-consistency.test.ts holds both sides to that.
// The settings are a child resource of the site, not its siteConfig.appSettings, so that they can
// name the site's own default host name (STATUS_PAGE_URL): the platform picks that name (it is a
// random, region-scoped one when unique default host names apply), so it is only known once the
// site exists. The official Flex Consumption quickstarts set their settings the same way.
// Flex Consumption takes the runtime from functionAppConfig, so FUNCTIONS_WORKER_RUNTIME,
// FUNCTIONS_EXTENSION_VERSION, WEBSITE_RUN_FROM_PACKAGE and WEBSITE_CONTENT* must not be set, and
// AzureWebJobsStorage must be absent (not even empty) for the identity-based settings to apply.

@description('Function app name; the platform derives the default host name from it (<name>.azurewebsites.net, or <name>-<hash>.<region>.azurewebsites.net with unique default host names).')
param name string

@description('Flex Consumption plan name.')
param planName string

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Resource id of the user-assigned managed identity the app runs as.')
param identityId string

@description('Client id of that identity.')
param identityClientId string

@description('Storage account for the host and the state tables.')
param storageAccountName string

@description('Blob container URL the app package is deployed to.')
param deploymentContainerUrl string

@description('Application Insights connection string.')
param appInsightsConnectionString string

@description('Key Vault that holds the TeamViewer token.')
param keyVaultName string

@description('Name of the secret with the TeamViewer token.')
param tokenSecretName string

@description('Node.js major version.')
@allowed([
  '22'
])
param nodeVersion string

@description('Most instances the app may scale out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int

@description('Memory per instance (MB).')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int

@description('ENTRA_SERVICE_PRINCIPAL_ID: object id of the TeamViewer enterprise application.')
param entraServicePrincipalId string

@description('SYNC_SCHEDULE: NCRONTAB (6 fields) of the timer heartbeat.')
param syncSchedule string

@description('SYNC_INTERVAL_MINUTES: minutes between the starts of two cycles.')
param syncIntervalMinutes int

@description('TEAMVIEWER_CONCURRENCY: the most TeamViewer calls in flight at once (1-64); the client adapts below it.')
@minValue(1)
@maxValue(64)
param teamViewerConcurrency int

@description('TEAMVIEWER_TIMEOUT_SECONDS: seconds one TeamViewer request may take.')
param teamViewerTimeoutSeconds int

@description('GRAPH_TIMEOUT_SECONDS: seconds one Microsoft Graph or token request may take.')
param graphTimeoutSeconds int

@description('LOG_LEVEL: debug, info, warn or error.')
param logLevel string

@description('SYNC_SCOPE: assigned or all.')
param syncScope string

@description('EXPAND_NESTED_GROUPS: also members of nested groups.')
param expandNestedGroups bool

@description('SCOPING_FILTERS: scoping filters as JSON (empty: everyone in scope).')
param scopingFilters string

@description('ATTRIBUTE_MAPPINGS: attribute mappings as JSON (empty: the gallery defaults).')
param attributeMappings string

@description('SKIP_OUT_OF_SCOPE_DELETIONS: leave users who leave scope active.')
param skipOutOfScopeDeletions bool

@description('GROUP_PROVISIONING: off or assigned.')
param groupProvisioning string

@description('GROUP_NAME_PREFIX: put before the Entra display name of each group.')
param groupNamePrefix string

@description('GROUP_ROLES: roles for groups as JSON (empty: roles are left alone).')
param groupRoles string

@description('DEACTIVATION_THRESHOLD: a count or a percentage.')
param deactivationThreshold string

@description('SUSPICIOUS_DROP_PERCENT: 0-99, 0 turns the check off.')
param suspiciousDropPercent int

@description('LOG_RETENTION_DAYS: days provisioning logs are kept.')
param provisioningLogRetentionDays int

@description('GRAPH_BASE_URL: Microsoft Graph root.')
param graphBaseUrl string

@description('TEAMVIEWER_SCIM_URL: TeamViewer SCIM base URL.')
param teamViewerScimUrl string

@description('STATE_TABLE_PREFIX: prefix of the state tables.')
param stateTablePrefix string

@description('AzureWebJobs.sync.Disabled: true keeps the sync timer from firing.')
param syncDisabled bool

@description('ACS_EMAIL_ENDPOINT: Communication Services endpoint.')
param emailEndpoint string

@description('ACS_EMAIL_SENDER: sender address on the Azure-managed domain.')
param emailSender string

@description('NOTIFY_EMAIL_TO: recipients of the failure emails (empty: none are sent).')
param notifyEmailTo string

@description('QUARANTINE_FAILURE_PERCENT: quarantine above this share of failed changes in a cycle.')
@minValue(1)
@maxValue(100)
param quarantineFailurePercent int

@description('QUARANTINE_MIN_FAILURES: the failure-share rule applies from this many failed changes.')
@minValue(1)
@maxValue(1000000)
param quarantineMinFailures int

@description('CYCLE_TIME_BUDGET_SECONDS: a cycle starts no new work after this long.')
@minValue(1)
@maxValue(1440)
param cycleTimeBudgetSeconds int

@description('DRIFT_CHECK: every-cycle, daily or off.')
param driftCheck string

@description('ALERT_AFTER_MISSED_CYCLES: email when no cycle succeeded for this many intervals.')
@minValue(1)
@maxValue(1000)
param alertAfterMissedCycles int

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references resolve with this identity (the app has no system-assigned one).
    keyVaultReferenceIdentity: identityId
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'node'
        version: nodeVersion
      }
    }
  }
}

// Each deployment writes this whole set: a setting set only in the portal is dropped.
resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: {
    // Host storage and the state tables, through the identity (the account has no shared keys).
    AzureWebJobsStorage__accountName: storageAccountName
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identityClientId
    // DefaultAzureCredential (Microsoft Graph, Communication Services) picks this identity.
    AZURE_CLIENT_ID: identityClientId
    APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
    // Local auth is off on the component: telemetry goes in with the identity's token.
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
    ENTRA_SERVICE_PRINCIPAL_ID: entraServicePrincipalId
    // No secret version: the platform picks up a new token version within a day, or at once on restart.
    TEAMVIEWER_API_TOKEN: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${tokenSecretName})'
    TEAMVIEWER_CONCURRENCY: string(teamViewerConcurrency)
    TEAMVIEWER_TIMEOUT_SECONDS: string(teamViewerTimeoutSeconds)
    GRAPH_TIMEOUT_SECONDS: string(graphTimeoutSeconds)
    // The timer trigger's schedule is %SYNC_SCHEDULE%, resolved by the host from app settings
    // (tvsync's own default does not reach the binding), so it must always be present.
    SYNC_SCHEDULE: syncSchedule
    SYNC_INTERVAL_MINUTES: string(syncIntervalMinutes)
    LOG_LEVEL: logLevel
    SYNC_SCOPE: syncScope
    // Spelled as tvsync documents them: ARM's string() of a bool would give True/False.
    EXPAND_NESTED_GROUPS: expandNestedGroups ? 'true' : 'false'
    SCOPING_FILTERS: scopingFilters
    ATTRIBUTE_MAPPINGS: attributeMappings
    SKIP_OUT_OF_SCOPE_DELETIONS: skipOutOfScopeDeletions ? 'true' : 'false'
    GROUP_PROVISIONING: groupProvisioning
    GROUP_NAME_PREFIX: groupNamePrefix
    GROUP_ROLES: groupRoles
    DEACTIVATION_THRESHOLD: deactivationThreshold
    SUSPICIOUS_DROP_PERCENT: string(suspiciousDropPercent)
    CYCLE_TIME_BUDGET_SECONDS: string(cycleTimeBudgetSeconds)
    DRIFT_CHECK: driftCheck
    QUARANTINE_FAILURE_PERCENT: string(quarantineFailurePercent)
    QUARANTINE_MIN_FAILURES: string(quarantineMinFailures)
    LOG_RETENTION_DAYS: string(provisioningLogRetentionDays)
    GRAPH_BASE_URL: graphBaseUrl
    TEAMVIEWER_SCIM_URL: teamViewerScimUrl
    STATE_TABLE_PREFIX: stateTablePrefix
    // The platform's switch for one function: the host does not start the timer's listener.
    // Always present, so that a re-deployment with syncDisabled=false resumes the timer.
    'AzureWebJobs.sync.Disabled': syncDisabled ? 'true' : 'false'
    // Failure emails: sent through Communication Services with the identity (AZURE_CLIENT_ID).
    // The resource's access keys are off, so ACS_EMAIL_CONNECTION_STRING is never set here.
    ACS_EMAIL_ENDPOINT: emailEndpoint
    ACS_EMAIL_SENDER: emailSender
    NOTIFY_EMAIL_TO: notifyEmailTo
    ALERT_AFTER_MISSED_CYCLES: string(alertAfterMissedCycles)
    // Linked from every email; the page still asks for a function key, which is never put here.
    STATUS_PAGE_URL: 'https://${site.properties.defaultHostName}/api/status'
  }
}

output name string = site.name
output defaultHostName string = site.properties.defaultHostName
