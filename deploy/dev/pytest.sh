#!/usr/bin/env bash
# pytest.sh — runs client/python's pytest suite in the venv of pyenv.sh.
#
# deploy/dev/test.sh calls it while its private containerd runs (it exports
# PCNODE_TEST_CONTAINERD_ADDRESS, which the tests' pcnoded fixture needs,
# and PCNODE_TEST_REQUIRE_INTEGRATION=1, under which a skipped test fails
# the run). Run alone it needs those set by hand.
#
# Environment:
#   PYTEST_ARGS   what to run, relative to client/python (default: tests),
#                 e.g. "tests/client -k follow" or "tests/airflow/test_x.py"
#   PYTEST_TIMEOUT  per-test timeout in seconds (default 120)
# Writes the JUnit report to .tmp/pytest.xml and prints one summary line
# "pytest: P passed, F failed, S skipped" for test.sh. AIRFLOW_HOME is a
# fresh temporary directory for every run.
set -euo pipefail

cd "$(dirname "$0")/../.."
repo=$(pwd)
venv=$(./deploy/dev/pyenv.sh)
mkdir -p "$repo/.tmp"
junit=$repo/.tmp/pytest.xml
rm -f "$junit"

airflow_home=$(mktemp -d "${TMPDIR:-/tmp}/airflow-home.XXXXXX")
trap 'rm -rf "$airflow_home"' EXIT
export AIRFLOW_HOME=$airflow_home
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export PYTHONDONTWRITEBYTECODE=1
# The tests build cmd/pcnoded with go; PATH keeps the go test.sh found.

cd "$repo/client/python"
rc=0
# shellcheck disable=SC2086 # PYTEST_ARGS is a list of arguments
"$venv/bin/python" -m pytest -p no:cacheprovider --timeout "${PYTEST_TIMEOUT:-120}" \
  --junitxml "$junit" -o junit_family=xunit2 ${PYTEST_ARGS:-tests} || rc=$?

# A second guard besides the conftest hook: the JUnit report must exist,
# hold at least one test and no skip.
if [ -f "$junit" ]; then
  read -r tests failures errors skipped < <("$venv/bin/python" - "$junit" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
tot = [sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")]
print(*tot)
PY
)
  echo "pytest: $((tests - failures - errors - skipped)) passed, $((failures + errors)) failed, $skipped skipped"
  if [ "$skipped" -gt 0 ] && [ "${PCNODE_TEST_REQUIRE_INTEGRATION:-}" = 1 ]; then
    echo "pytest.sh: $skipped test(s) skipped; under make test a skip is a failure"
    [ "$rc" -ne 0 ] || rc=1
  fi
  if [ "$tests" -eq 0 ] && [ "$rc" -eq 0 ]; then
    echo "pytest.sh: no test ran"
    rc=1
  fi
else
  echo "pytest: 0 passed, 1 failed, 0 skipped (no JUnit report)"
  [ "$rc" -ne 0 ] || rc=1
fi
exit "$rc"
