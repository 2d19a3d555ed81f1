<#
.SYNOPSIS
Grants tvsync's managed identity the Microsoft Graph application permissions it needs.

.DESCRIPTION
Grants Application.Read.All (the TeamViewer enterprise application and who is assigned to it),
User.Read.All (the assigned users' attributes) and GroupMember.Read.All (the members of assigned
groups) to a managed identity, by creating app role assignments on its service principal
(POST /servicePrincipals/{id}/appRoleAssignments). Permissions it already has are reported as
"already granted" and left alone, so the script can be run again safely.

Bicep cannot do this in every tenant, so it is a separate step after the deployment. Same
behaviour as grant-graph-permissions.sh; uses the Azure CLI (az) from PowerShell 7.

Needs az, signed in (az login) as someone allowed to grant application permissions: Privileged
Role Administrator or Global Administrator (Application Administrator is not enough for
Microsoft Graph permissions).

Exit code: 0 every permission is in place (or would be, with -DryRun); 1 a step failed;
2 wrong usage.

.PARAMETER PrincipalId
Object (principal) id of the managed identity: the deployment output identityPrincipalId, or
az identity show -g <resource group> -n <identity name> --query principalId -o tsv

.PARAMETER DryRun
Show what would be granted, change nothing.

.PARAMETER GraphUrl
Microsoft Graph root; default: the Graph of the Azure CLI's current cloud (https://graph.microsoft.com
in the public cloud). It must be that cloud's Graph: for a national cloud, run
`az cloud set --name AzureUSGovernment` (or AzureChinaCloud) and `az login` first, as az gets tokens
for its own cloud only.

.EXAMPLE
./infra/grant-graph-permissions.ps1 -PrincipalId 5f1c2a3b-0000-4000-8000-123456789abc -DryRun
#>
#Requires -Version 7.0
[CmdletBinding()]
param(
    [Parameter(Position = 0)]
    [string] $PrincipalId,
    [switch] $DryRun,
    [string] $GraphUrl = '',
    [Alias('h')]
    [switch] $Help
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$Roles = @('Application.Read.All', 'User.Read.All', 'GroupMember.Read.All')
$GraphAppId = '00000003-0000-0000-c000-000000000000'

function Stop-WithUsage([string] $Message) {
    [Console]::Error.WriteLine("error: $Message (see Get-Help $PSCommandPath, or -Help)")
    exit 2
}

function Stop-WithError([string] $Message) {
    [Console]::Error.WriteLine("error: $Message")
    exit 1
}

# az rest prints its own error (with Graph's message) on stderr; we add what we were doing.
function Invoke-Graph([string] $What, [string[]] $Arguments) {
    $output = & az rest --only-show-errors @Arguments
    if ($LASTEXITCODE -ne 0) { Stop-WithError "$What failed (see the message above)" }
    if ($null -eq $output) { return $null }
    return ($output -join "`n") | ConvertFrom-Json
}

if ($Help) {
    Get-Help $PSCommandPath -Detailed
    exit 0
}
if (-not $PrincipalId) { Stop-WithUsage 'PrincipalId is missing' }
if ($PrincipalId -notmatch '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$') {
    Stop-WithUsage "PrincipalId `"$PrincipalId`" is not an object id (a GUID)"
}
$GraphUrl = $GraphUrl.TrimEnd('/')
if ($GraphUrl -and -not $GraphUrl.StartsWith('https://')) { Stop-WithUsage '-GraphUrl must be an https URL' }
if (-not (Get-Command az -ErrorAction SilentlyContinue)) {
    Stop-WithError 'the Azure CLI (az) is not installed: https://learn.microsoft.com/cli/azure/install-azure-cli'
}
& az account show --only-show-errors *> $null
if ($LASTEXITCODE -ne 0) { Stop-WithError 'not signed in to the Azure CLI: run az login' }

# az signs requests only for the Graph of its current cloud (az cloud set); another cloud's Graph
# would get no token and fail with 401 on the first call, so say what to do instead.
$cloud = (& az cloud show --only-show-errors --output json) -join "`n" | ConvertFrom-Json
if ($LASTEXITCODE -ne 0) { Stop-WithError "could not read the Azure CLI's current cloud (az cloud show)" }
$cloudGraph = ([string] $cloud.endpoints.microsoftGraphResourceId).TrimEnd('/')
if (-not $GraphUrl) {
    $GraphUrl = $cloudGraph
}
elseif ($GraphUrl -ne $cloudGraph) {
    Stop-WithError ("-GraphUrl $GraphUrl is not the Microsoft Graph of the Azure CLI's current cloud ($($cloud.name), $cloudGraph). " +
        'Switch clouds first: az cloud set --name AzureUSGovernment (graph.microsoft.us) or AzureChinaCloud (microsoftgraph.chinacloudapi.cn), then az login')
}

$identity = Invoke-Graph "reading service principal $PrincipalId" @(
    '--method', 'GET', '--url', "$GraphUrl/v1.0/servicePrincipals/$PrincipalId`?`$select=id,displayName")
Write-Output ("identity:        {0} (service principal {1})" -f $identity.displayName, $PrincipalId)

$graphSp = Invoke-Graph 'reading the Microsoft Graph service principal' @(
    '--method', 'GET', '--url', "$GraphUrl/v1.0/servicePrincipals(appId='$GraphAppId')?`$select=id,appRoles")
Write-Output ("Microsoft Graph: service principal {0}" -f $graphSp.id)

# Every page of the identity's assignments: Graph pages them (@odata.nextLink) whatever $top asks
# for, and a role granted on a later page must still count as granted.
$granted = @()
$nextUrl = "$GraphUrl/v1.0/servicePrincipals/$PrincipalId/appRoleAssignments?`$select=appRoleId,resourceId&`$top=999"
while ($nextUrl) {
    $page = Invoke-Graph "listing the identity's app role assignments" @('--method', 'GET', '--url', $nextUrl)
    $granted += @($page.value | Where-Object { $_.resourceId -eq $graphSp.id } | ForEach-Object { $_.appRoleId })
    $link = $page.PSObject.Properties['@odata.nextLink']
    $nextUrl = if ($link) { $link.Value } else { $null }
}

$bodyFile = New-TemporaryFile
$failures = 0
try {
    foreach ($role in $Roles) {
        $appRole = @($graphSp.appRoles | Where-Object { $_.value -eq $role -and $_.allowedMemberTypes -contains 'Application' }) | Select-Object -First 1
        if (-not $appRole) { Stop-WithError "Microsoft Graph has no application permission named $role" }
        if ($granted -contains $appRole.id) {
            Write-Output ('{0,-22} already granted' -f $role)
        }
        elseif ($DryRun) {
            Write-Output ('{0,-22} would be granted (dry run: nothing changed)' -f $role)
        }
        else {
            # The body goes through a file: quoting JSON on a native command line differs between shells.
            @{ principalId = $PrincipalId; resourceId = $graphSp.id; appRoleId = $appRole.id } |
                ConvertTo-Json -Compress | Set-Content -Path $bodyFile -Encoding utf8NoBOM
            & az rest --only-show-errors --method POST `
                --url "$GraphUrl/v1.0/servicePrincipals/$PrincipalId/appRoleAssignments" `
                --headers 'Content-Type=application/json' --body "@$bodyFile" --output none
            if ($LASTEXITCODE -eq 0) {
                Write-Output ('{0,-22} granted' -f $role)
            }
            else {
                [Console]::Error.WriteLine(('{0,-22} FAILED (see the message above)' -f $role))
                $failures++
            }
        }
    }
}
finally {
    Remove-Item -Path $bodyFile -Force -ErrorAction SilentlyContinue
}

if ($failures -gt 0) { Stop-WithError "$failures of $($Roles.Count) permissions could not be granted" }
if ($DryRun) {
    Write-Output 'dry run: no change made'
}
else {
    Write-Output ("done: {0} has {1} on Microsoft Graph (tokens already issued keep the old permissions for up to 24 hours)" -f $identity.displayName, ($Roles -join ', '))
}
exit 0
