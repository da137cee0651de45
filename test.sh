#!/usr/bin/env bash
# Builds Passage (warnings are errors) and runs every test. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet build Passage.slnx -c Release -warnaserror
dotnet test Passage.slnx -c Release --no-build --logger "console;verbosity=normal" --blame-hang-timeout 5m "$@"
