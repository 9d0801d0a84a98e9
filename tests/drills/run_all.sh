#!/usr/bin/env bash
# Run every fault drill (README.md "Fault drills"); exit non-zero if any fails.
# Needs PostgreSQL (DRILL_DATABASE_URL, default the local server as postgres); the
# PostgreSQL drill restarts the local cluster for a moment.
set -uo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-python}"
failed=()
started=$SECONDS
for drill in app_server_kill postgres_restart scheduler_kill backup_restore; do
  if ! "$PYTHON" "tests/drills/$drill.py" 2> >(grep -v '^INFO  \[alembic' >&2); then
    failed+=("$drill")
  fi
done
echo "== drills: $((${#failed[@]} == 0 ? 4 : 4 - ${#failed[@]})) of 4 passed in $((SECONDS - started)) s"
if ((${#failed[@]})); then
  echo "== failed: ${failed[*]}"
  exit 1
fi
