#!/usr/bin/env bash
# Builds Passage (warnings are errors) and runs every test. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
results="$(pwd)/TestResults"
rm -rf "$results"
dotnet build Passage.slnx -c Release -warnaserror
status=0
dotnet test Passage.slnx -c Release --no-build --blame-hang-timeout 5m \
  --results-directory "$results" --logger "trx;LogFileName=passage.trx" "$@" || status=$?
# One closing line with the counts, read from the test results.
if counters=$(grep -o '<Counters [^>]*' "$results"/passage.trx 2>/dev/null); then
  count() { sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p" <<<"$counters"; }
  echo "tests: $(count passed) passed, $(count failed) failed, $(( $(count total) - $(count executed) )) skipped"
fi
exit $status
