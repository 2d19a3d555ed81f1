// The tvsync Function App on a Flex Consumption (FC1, Linux) plan.
//
// Invariant: `appSettings` below is the complete set of settings the app gets in Azure. Each name
// is either read by tvsync (shared/config.ts SETTING_SPECS) or used by the Functions platform;
// test/integration/infra-consistency.test.ts holds both sides to that.
// Flex Consumption takes the runtime from functionAppConfig, so FUNCTIONS_WORKER_RUNTIME,
// FUNCTIONS_EXTENSION_VERSION, WEBSITE_RUN_FROM_PACKAGE and WEBSITE_CONTENT* must not be set, and
// AzureWebJobsStorage must be absent (not even empty) for the identity-based settings to apply.

@description('Function app name (globally unique; becomes <name>.azurewebsites.net).')
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

@description('TEAMVIEWER_CONCURRENCY: most TeamViewer calls in flight at once.')
param teamViewerConcurrency int

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

@description('NOTIFY_EMAIL_TO: recipients of the coming failure emails (not sent yet).')
param notifyEmailTo string

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
    siteConfig: {
      appSettings: [
        // Host storage and the state tables, through the identity (the account has no shared keys).
        {
          name: 'AzureWebJobsStorage__accountName'
          value: storageAccountName
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        // DefaultAzureCredential (Microsoft Graph, Communication Services) picks this identity.
        {
          name: 'AZURE_CLIENT_ID'
          value: identityClientId
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsightsConnectionString
        }
        // Local auth is off on the component: telemetry goes in with the identity's token.
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
        {
          name: 'ENTRA_SERVICE_PRINCIPAL_ID'
          value: entraServicePrincipalId
        }
        // No secret version: the platform picks up a new token version within a day, or at once on restart.
        {
          name: 'TEAMVIEWER_API_TOKEN'
          value: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${tokenSecretName})'
        }
        {
          name: 'TEAMVIEWER_CONCURRENCY'
          value: string(teamViewerConcurrency)
        }
        // The timer trigger's schedule is %SYNC_SCHEDULE%, resolved by the host from app settings
        // (tvsync's own default does not reach the binding), so it must always be present.
        {
          name: 'SYNC_SCHEDULE'
          value: syncSchedule
        }
        {
          name: 'SYNC_INTERVAL_MINUTES'
          value: string(syncIntervalMinutes)
        }
        {
          name: 'LOG_LEVEL'
          value: logLevel
        }
        {
          name: 'SYNC_SCOPE'
          value: syncScope
        }
        // Spelled as tvsync documents them: ARM's string() of a bool would give True/False.
        {
          name: 'EXPAND_NESTED_GROUPS'
          value: expandNestedGroups ? 'true' : 'false'
        }
        {
          name: 'SCOPING_FILTERS'
          value: scopingFilters
        }
        {
          name: 'ATTRIBUTE_MAPPINGS'
          value: attributeMappings
        }
        {
          name: 'SKIP_OUT_OF_SCOPE_DELETIONS'
          value: skipOutOfScopeDeletions ? 'true' : 'false'
        }
        {
          name: 'DEACTIVATION_THRESHOLD'
          value: deactivationThreshold
        }
        {
          name: 'SUSPICIOUS_DROP_PERCENT'
          value: string(suspiciousDropPercent)
        }
        {
          name: 'LOG_RETENTION_DAYS'
          value: string(provisioningLogRetentionDays)
        }
        {
          name: 'GRAPH_BASE_URL'
          value: graphBaseUrl
        }
        {
          name: 'TEAMVIEWER_SCIM_URL'
          value: teamViewerScimUrl
        }
        {
          name: 'STATE_TABLE_PREFIX'
          value: stateTablePrefix
        }
        // The platform's switch for one function: the host does not start the timer's listener.
        // Always present, so that a re-deployment with syncDisabled=false resumes the timer.
        {
          name: 'AzureWebJobs.sync.Disabled'
          value: syncDisabled ? 'true' : 'false'
        }
        {
          name: 'ACS_EMAIL_ENDPOINT'
          value: emailEndpoint
        }
        {
          name: 'ACS_EMAIL_SENDER'
          value: emailSender
        }
        {
          name: 'NOTIFY_EMAIL_TO'
          value: notifyEmailTo
        }
      ]
    }
  }
}

output name string = site.name
output defaultHostName string = site.properties.defaultHostName
