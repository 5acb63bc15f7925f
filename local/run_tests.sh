#!/usr/bin/env bash
# The test command: sets the environment up (local/setup_env.sh) and runs the test suite.
# pytest's exit code 5 ("no tests collected") is a failure here: a run that tests nothing must not pass.
set -uo pipefail
cd "$(dirname "$0")/.."
bash local/setup_env.sh || exit 1
export HF_HUB_OFFLINE=1   # never reach a model hub from the tests
# idle OpenMP threads sleep: tests start many processes on CI's 2 cores, where spinning threads
# slowed small-model steps up to 100x (run.sh leaves the default: one process per stage there)
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
.venv/bin/python -m pytest -q tests "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$rc"
