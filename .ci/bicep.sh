#!/usr/bin/env bash
# Compiles every .bicep under infra/ with the real Bicep CLI and fails on any error or warning
# (linter rules are errors in infra/bicepconfig.json; compiler warnings such as an unknown
# property, BCP037, are caught here from the output).
#
# The CLI is `bicep` on PATH when there is one; otherwise the NuGet package
# Azure.Bicep.CommandLine.linux-x64 is restored by a throw-away project in a temp folder and kept
# in a cache (default ~/.cache/tvsync-bicep), so later runs start at once.
#
# Usage: .ci/bicep.sh [INFRA_DIR]     build and lint (default: infra/ of this repo)
#        .ci/bicep.sh --print-path    fetch the CLI if needed and print its path only
# With TVSYNC_BICEP_ARM_OUT=<file>, the compiled main.bicep (ARM JSON) is kept there.
set -euo pipefail

BICEP_VERSION=0.49.2
BICEP_PACKAGE=Azure.Bicep.CommandLine.linux-x64
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache_dir=${TVSYNC_BICEP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tvsync-bicep}

log() { printf 'bicep.sh: %s\n' "$*" >&2; }

# Prints the path of a Bicep CLI, fetching it into the cache when there is none.
find_bicep() {
  if command -v bicep >/dev/null 2>&1; then
    command -v bicep
    return
  fi
  local package_id cached
  package_id=$(printf '%s' "$BICEP_PACKAGE" | tr '[:upper:]' '[:lower:]')
  cached="$cache_dir/$BICEP_VERSION/packages/$package_id/$BICEP_VERSION/tools/bicep"
  if [[ -x "$cached" ]]; then
    printf '%s\n' "$cached"
    return
  fi
  if ! command -v dotnet >/dev/null 2>&1; then
    log "no 'bicep' on PATH and no 'dotnet' to fetch $BICEP_PACKAGE $BICEP_VERSION; install one of them"
    return 1
  fi
  mkdir -p "$cache_dir"
  # Two runs fetching at once would replace each other's download: the second one waits and
  # then finds the CLI the first one cached.
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$cache_dir/.fetch.lock"
    flock 9
    if [[ -x "$cached" ]]; then
      printf '%s\n' "$cached"
      return
    fi
  fi
  # Restore into a temp folder inside the cache and move it into place in one step, so an
  # interrupted download never leaves a half-written CLI behind.
  local work tfm
  work=$(mktemp -d "$cache_dir/restore.XXXXXX")
  tfm="net$(dotnet --version | cut -d. -f1).0"
  cat >"$work/fetch-bicep.csproj" <<EOF
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <TargetFramework>$tfm</TargetFramework>
  </PropertyGroup>
  <ItemGroup>
    <PackageDownload Include="$BICEP_PACKAGE" Version="[$BICEP_VERSION]" />
  </ItemGroup>
</Project>
EOF
  log "fetching $BICEP_PACKAGE $BICEP_VERSION with dotnet restore (once; cached in $cache_dir)"
  if ! DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 \
    dotnet restore "$work/fetch-bicep.csproj" --packages "$work/packages" >"$work/restore.log" 2>&1; then
    cat "$work/restore.log" >&2
    rm -rf "$work"
    log "dotnet restore of $BICEP_PACKAGE $BICEP_VERSION failed"
    return 1
  fi
  local fetched="$work/packages/$package_id/$BICEP_VERSION/tools/bicep"
  if [[ ! -f "$fetched" ]]; then
    rm -rf "$work"
    log "the package has no tools/bicep"
    return 1
  fi
  chmod +x "$fetched"
  rm -rf "${cache_dir:?}/$BICEP_VERSION"
  mkdir -p "$cache_dir/$BICEP_VERSION"
  mv "$work/packages" "$cache_dir/$BICEP_VERSION/packages"
  rm -rf "$work"
  printf '%s\n' "$cached"
}

if [[ "${1:-}" == "--print-path" ]]; then
  find_bicep
  exit 0
fi
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit 0
fi

infra_dir=$(cd "${1:-$repo_root/infra}" && pwd)
bicep=$(find_bicep)
printf 'bicep.sh: %s (%s)\n' "$("$bicep" --version)" "$bicep"

mapfile -t files < <(find "$infra_dir" -name '*.bicep' -type f | sort)
if [[ ${#files[@]} -eq 0 ]]; then
  log "no .bicep files under $infra_dir"
  exit 1
fi

out_dir=$(mktemp -d)
trap 'rm -rf "$out_dir"' EXIT
for file in "${files[@]}"; do
  printf 'bicep.sh: checking %s\n' "${file#"$infra_dir"/}"
done

# One process lints every file (diagnostics are reported against the file they are in, so a
# module's unused parameter points at the module); a second compiles main.bicep to ARM JSON in a
# temp folder, never in the repo. Both exit 0 on warnings, hence the grep.
status=0
lint_output=$("$bicep" lint --pattern "$infra_dir/**/*.bicep" 2>&1) || status=$?
build_output=
# A failed lint already says what is wrong (the build would repeat it); skip the second process.
if [[ $status -eq 0 ]] && ! grep -Eq ': (Warning|Error) ' <<<"$lint_output"; then
  build_output=$("$bicep" build "$infra_dir/main.bicep" --outfile "$out_dir/main.json" 2>&1) || status=$?
fi
diagnostics=$(printf '%s\n%s\n' "$lint_output" "$build_output" | awk 'NF && !seen[$0]++')
if [[ -n "$diagnostics" ]]; then
  printf '%s\n' "$diagnostics"
fi
if [[ $status -ne 0 ]] || grep -Eq ': (Warning|Error) ' <<<"$diagnostics"; then
  count=$(grep -Ec ': (Warning|Error) ' <<<"$diagnostics" || true)
  printf 'bicep.sh: FAILED: %s error(s)/warning(s) in %s Bicep files (exit status %s)\n' "$count" "${#files[@]}" "$status"
  exit 1
fi
printf 'bicep.sh: ok: %s Bicep files lint clean; main.bicep compiles to %s lines of ARM JSON\n' \
  "${#files[@]}" "$(wc -l <"$out_dir/main.json")"
if [[ -n "${TVSYNC_BICEP_ARM_OUT:-}" ]]; then
  cp "$out_dir/main.json" "$TVSYNC_BICEP_ARM_OUT"
fi
