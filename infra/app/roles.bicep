// Every permission the app's managed identity has in Azure, and nothing else.
//
// No queue role: the Functions host needs queues on AzureWebJobsStorage only for blob triggers
// and Durable Functions (Microsoft's "Connecting to host storage with an identity": host only and
// timer trigger need Storage Blob Data Owner; diagnostic events add Table Data Contributor), and
// tvsync has a timer and HTTP triggers only.
//
// Invariant: this module is the only place that grants the identity a role. Microsoft Graph
// application permissions are not Azure roles; infra/grant-graph-permissions.sh grants those.
//
// | role                                   | scope               | why                                                    |
// | Storage Blob Data Owner                | storage account     | host: blob leases (timer singleton), deployment package |
// | Storage Table Data Contributor         | storage account     | tvsync state tables (and the host's diagnostic events) |
// | Key Vault Secrets User                 | the vault           | Key Vault reference to the TeamViewer token            |
// | Monitoring Metrics Publisher           | Application Insights| telemetry with Entra ID auth (local auth is off)       |
// | tvsync email sender (custom) or        | Communication Svc   | send the failure emails                                |
// |   Communication and Email Service Owner|                     |   (builtin fallback, see emailSenderRole)              |

@description('Name of the user-assigned managed identity the app runs as.')
param identityName string

@description('Storage account the host and the state tables use.')
param storageAccountName string

@description('Key Vault holding the TeamViewer token.')
param keyVaultName string

@description('Application Insights component the app sends telemetry to.')
param appInsightsName string

@description('Communication Services resource the app sends email through.')
param communicationServiceName string

@description('custom: a role with only the three actions ACS documents for sending email (needs Owner or User Access Administrator to create). builtin: "Communication and Email Service Owner", which can also read keys and delete the resource.')
@allowed([
  'custom'
  'builtin'
])
param emailSenderRole string

var roleIds = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  communicationAndEmailServiceOwner: '09976791-48a7-449e-bb21-39d1a415f350'
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: identityName
}

// Assignment names use the identity's resource id, known before deployment; its principal id is not.
var principalId = identity.properties.principalId

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource communicationService 'Microsoft.Communication/communicationServices@2025-05-01' existing = {
  name: communicationServiceName
}

resource blobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roleIds.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.storageBlobDataOwner)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource tableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roleIds.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.storageTableDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identity.id, roleIds.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.keyVaultSecretsUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, identity.id, roleIds.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.monitoringMetricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Azure Communication Services has no send-only built-in role. These three actions are what its
// documentation names for sending email with a Microsoft Entra identity; unlike the built-in
// owner role they do not allow listing keys or deleting the resource.
resource emailSenderDefinition 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (emailSenderRole == 'custom') {
  name: guid(resourceGroup().id, 'tvsync-email-sender')
  properties: {
    // Role names are unique per tenant: subscription and resource group keep deployments apart.
    roleName: 'tvsync email sender (${resourceGroup().name}, subscription ${take(subscription().subscriptionId, 8)})'
    description: 'Send email through Azure Communication Services with a Microsoft Entra identity.'
    type: 'CustomRole'
    assignableScopes: [
      resourceGroup().id
    ]
    permissions: [
      {
        actions: [
          'Microsoft.Communication/CommunicationServices/Read'
          'Microsoft.Communication/CommunicationServices/Write'
          'Microsoft.Communication/EmailServices/write'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
  }
}

var emailRoleDefinitionId = emailSenderRole == 'custom'
  ? emailSenderDefinition.id
  : subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleIds.communicationAndEmailServiceOwner)

resource emailSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(communicationService.id, identity.id, emailSenderRole)
  scope: communicationService
  properties: {
    roleDefinitionId: emailRoleDefinitionId
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
