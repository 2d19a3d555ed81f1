#!/usr/bin/env bash
# Grants tvsync's managed identity the Microsoft Graph application permissions it needs.
# Bicep cannot do this in every tenant, so it is a separate step after `az deployment group create`.
# Idempotent: a permission already granted is left alone. See --help.
set -euo pipefail

readonly ROLES=(Application.Read.All User.Read.All GroupMember.Read.All)
readonly GRAPH_APP_ID=00000003-0000-0000-c000-000000000000

usage() {
  cat <<'EOF'
Usage: infra/grant-graph-permissions.sh [--dry-run] [--graph-url URL] PRINCIPAL_ID

Grants the Microsoft Graph application permissions tvsync reads Entra ID with
    Application.Read.All   the TeamViewer enterprise application and who is assigned to it
    User.Read.All          the assigned users' attributes
    GroupMember.Read.All   the members of assigned groups
to a managed identity, by creating app role assignments on its service principal
(POST /servicePrincipals/{id}/appRoleAssignments). Permissions it already has are
reported as "already granted" and left alone, so the script can be run again safely.

PRINCIPAL_ID  object (principal) id of the managed identity: the deployment output
              identityPrincipalId, or
              az identity show -g <resource group> -n <identity name> --query principalId -o tsv

Options
  --dry-run        show what would be granted, change nothing
  --graph-url URL  Microsoft Graph root; default: the Graph of the Azure CLI's current cloud
                   (https://graph.microsoft.com in the public cloud). It must be that cloud's
                   Graph: for a national cloud, run `az cloud set --name AzureUSGovernment` (or
                   AzureChinaCloud) and `az login` first, as az gets tokens for its own cloud only
  -h, --help       this text

Needs the Azure CLI (az), signed in (az login) as someone allowed to grant application
permissions: Privileged Role Administrator or Global Administrator (Application
Administrator is not enough for Microsoft Graph permissions).

Exit status: 0 every permission is in place (or would be, with --dry-run); 1 a step failed;
2 wrong usage.
EOF
}

die() { printf 'error: %s\n' "$*" >&2; exit 1; }
# (macOS still ships bash 3.2, which has no ${var,,})
lower() { printf '%s' "$1" | tr '[:upper:]' '[:lower:]'; }
usage_error() { printf 'error: %s (see --help)\n' "$*" >&2; exit 2; }

dry_run=false
graph_url=
principal_id=
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --dry-run) dry_run=true ;;
    --graph-url)
      [[ $# -ge 2 ]] || usage_error "--graph-url needs a URL"
      graph_url=${2%/}
      shift
      ;;
    --graph-url=*) graph_url=${1#--graph-url=}; graph_url=${graph_url%/} ;;
    -*) usage_error "unknown option $1" ;;
    *)
      [[ -z "$principal_id" ]] || usage_error "one PRINCIPAL_ID only (got $principal_id and $1)"
      principal_id=$1
      ;;
  esac
  shift
done

[[ -n "$principal_id" ]] || usage_error "PRINCIPAL_ID is missing"
guid='^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
[[ "$principal_id" =~ $guid ]] || usage_error "PRINCIPAL_ID \"$principal_id\" is not an object id (a GUID)"
[[ -z "$graph_url" || "$graph_url" == https://* ]] || usage_error "--graph-url must be an https URL"
command -v az >/dev/null 2>&1 || die "the Azure CLI (az) is not installed: https://learn.microsoft.com/cli/azure/install-azure-cli"
az account show --only-show-errors >/dev/null 2>&1 || die "not signed in to the Azure CLI: run az login"

# az signs requests only for the Graph of its current cloud (az cloud set); another cloud's Graph
# would get no token and fail with 401 on the first call, so say what to do instead.
cloud=$(az cloud show --only-show-errors --query "join(' ', [name, endpoints.microsoftGraphResourceId])" --output tsv) ||
  die "could not read the Azure CLI's current cloud (az cloud show)"
cloud_name=${cloud%% *}
cloud_graph=${cloud#* }
cloud_graph=${cloud_graph%/}
if [[ -z "$graph_url" ]]; then
  graph_url=$cloud_graph
elif [[ "$(lower "$graph_url")" != "$(lower "$cloud_graph")" ]]; then
  die "--graph-url $graph_url is not the Microsoft Graph of the Azure CLI's current cloud ($cloud_name, $cloud_graph). Switch clouds first: az cloud set --name AzureUSGovernment (graph.microsoft.us) or AzureChinaCloud (microsoftgraph.chinacloudapi.cn), then az login"
fi

# az rest prints its own error (with Graph's message) on stderr; we add what we were doing.
graph() {
  local what=$1
  shift
  az rest --only-show-errors "$@" || die "$what failed (see the message above)"
}

identity_name=$(graph "reading service principal $principal_id" --method GET \
  --url "$graph_url/v1.0/servicePrincipals/$principal_id?\$select=id,displayName" \
  --query displayName --output tsv)
printf 'identity:        %s (service principal %s)\n' "$identity_name" "$principal_id"

graph_sp_id=$(graph "reading the Microsoft Graph service principal" --method GET \
  --url "$graph_url/v1.0/servicePrincipals(appId='$GRAPH_APP_ID')?\$select=id" \
  --query id --output tsv)
printf 'Microsoft Graph: service principal %s\n' "$graph_sp_id"

# "<permission name><TAB><app role id>" for every application permission Graph offers.
app_roles=$(graph "reading Microsoft Graph's application permissions" --method GET \
  --url "$graph_url/v1.0/servicePrincipals/$graph_sp_id?\$select=appRoles" \
  --query "appRoles[?contains(allowedMemberTypes, 'Application')].[value, id]" --output tsv)

# Every page of the identity's assignments: Graph pages them (@odata.nextLink) whatever $top asks
# for, and a role granted on a later page must still count as granted. Each page comes back as
# one line, "<role ids, comma-separated> <next link or nothing>".
granted=
next_url="$graph_url/v1.0/servicePrincipals/$principal_id/appRoleAssignments?\$select=appRoleId,resourceId&\$top=999"
while [[ -n "$next_url" ]]; do
  page=$(graph "listing the identity's app role assignments" --method GET --url "$next_url" \
    --query "join(' ', [join(',', value[?resourceId=='$graph_sp_id'].appRoleId), \"@odata.nextLink\" || ''])" --output tsv)
  granted+="${page%% *},"
  next_url=
  [[ "$page" == *" https://"* ]] && next_url=${page#* }
done
granted=$(tr ',' '\n' <<<"$granted" | sed '/^$/d')

body_file=$(mktemp)
trap 'rm -f "$body_file"' EXIT
failures=0
for role in "${ROLES[@]}"; do
  role_id=$(awk -F '\t' -v role="$role" '$1 == role { print $2; exit }' <<<"$app_roles")
  [[ -n "$role_id" ]] || die "Microsoft Graph has no application permission named $role"
  if grep -qix "$role_id" <<<"$granted"; then
    printf '%-22s already granted\n' "$role"
  elif [[ "$dry_run" == true ]]; then
    printf '%-22s would be granted (dry run: nothing changed)\n' "$role"
  else
    printf '{"principalId":"%s","resourceId":"%s","appRoleId":"%s"}' "$principal_id" "$graph_sp_id" "$role_id" >"$body_file"
    if az rest --only-show-errors --method POST \
      --url "$graph_url/v1.0/servicePrincipals/$principal_id/appRoleAssignments" \
      --headers 'Content-Type=application/json' --body "@$body_file" --output none; then
      printf '%-22s granted\n' "$role"
    else
      printf '%-22s FAILED (see the message above)\n' "$role" >&2
      failures=$((failures + 1))
    fi
  fi
done

if [[ $failures -gt 0 ]]; then
  die "$failures of ${#ROLES[@]} permissions could not be granted"
fi
if [[ "$dry_run" == true ]]; then
  printf 'dry run: no change made\n'
else
  printf 'done: %s has %s on Microsoft Graph (tokens already issued keep the old permissions for up to 24 hours)\n' \
    "$identity_name" "$(IFS=,; printf '%s' "${ROLES[*]}" | sed 's/,/, /g')"
fi
