// Key Vault (RBAC mode) holding the TeamViewer script token. The app reads it through a Key
// Vault reference resolved by the platform with the user-assigned identity; the token never
// appears in app settings, outputs or deployment history.

@description('Key Vault name (3-24 characters, globally unique).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Name of the secret that holds the TeamViewer script token.')
param tokenSecretName string

@secure()
@description('TeamViewer script token (User management: create, edit, view users; Account management: view account data). Empty: the secret is not created or changed (set it later, see README.md, "Deploying tvsync to Azure").')
param teamViewerApiToken string

@description('Purge protection: once on it cannot be turned off, and a deleted vault (and its name) is kept for the retention period.')
param enablePurgeProtection bool

@description('Days a deleted vault or secret can be recovered.')
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    // ARM rejects `false` here once it was ever true; leaving it out keeps the current state.
    enablePurgeProtection: enablePurgeProtection ? true : null
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

// Conditional so that a re-deployment without the token leaves the stored secret alone.
resource tokenSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(teamViewerApiToken)) {
  parent: vault
  name: tokenSecretName
  properties: {
    value: teamViewerApiToken
    contentType: 'TeamViewer script token (User management: create, edit, view users; Account management: view account data)'
  }
}

output name string = vault.name
output id string = vault.id
