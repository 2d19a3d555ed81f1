// Azure Communication Services for tvsync's failure emails: an Email Communication Service with an
// Azure-managed domain (<guid>.azurecomm.net, no DNS work), linked to a Communication Services
// resource that tvsync calls with its managed identity. Emails go out only when the app has
// recipients (NOTIFY_EMAIL_TO, main.bicep's notifyEmailTo).

@description('Communication Services resource name (globally unique).')
param communicationServiceName string

@description('Email Communication Service name.')
param emailServiceName string

@description('Where Communication Services stores data at rest; the email service and the resource must match.')
param dataLocation string

@description('Tags for every resource.')
param tags object

resource emailService 'Microsoft.Communication/emailServices@2025-05-01' = {
  name: emailServiceName
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
  }
}

resource managedDomain 'Microsoft.Communication/emailServices/domains@2025-05-01' = {
  parent: emailService
  name: 'AzureManagedDomain'
  location: 'global'
  tags: tags
  properties: {
    domainManagement: 'AzureManaged'
    // No tracking pixels or rewritten links in operational mail.
    userEngagementTracking: 'Disabled'
  }
}

resource communicationService 'Microsoft.Communication/communicationServices@2025-05-01' = {
  name: communicationServiceName
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
    // Access keys off: only Microsoft Entra identities with a role on this resource can send.
    disableLocalAuth: true
    linkedDomains: [
      managedDomain.id
    ]
  }
}

output name string = communicationService.name
output endpoint string = 'https://${communicationService.properties.hostName}'
// The Azure-managed domain only accepts the DoNotReply sender unless more sender usernames are added.
output senderAddress string = 'DoNotReply@${managedDomain.properties.mailFromSenderDomain}'
