#!/usr/bin/env bash
# The oldest Airflow pyproject.toml declares, for real: build the wheel, install it with every extra
# beside exactly that Airflow in a fresh venv (outside the checkout, so nothing imports the source
# tree), import every module, check Airflow discovers the provider and parse the example DAGs
# (scripts/smoke_installed.py), then run one example DAG end to end with `airflow dags test`
# against the sandbox. Called by .ci/run; a few minutes at most, mostly the install.
#
#   bash scripts/check-oldest-airflow.sh            # the declared minimum
#   AIRFLOW_VERSION=3.3.2 bash scripts/check-oldest-airflow.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
uv=${UV:-.venv/bin/uv}
python=${PYTHON:-python3}
[ -x "$uv" ] || uv=$(command -v uv) || { echo "uv not found: run make install first, or set UV"; exit 1; }

# The declared floor, e.g. "apache-airflow>=3.2.0" -> 3.2.0.
minimum=$(sed -n 's/^ *"apache-airflow>=\([0-9][0-9.]*\)".*/\1/p' pyproject.toml | head -n 1)
version=${AIRFLOW_VERSION:-$minimum}
[ -n "$version" ] || { echo "no apache-airflow>=X in pyproject.toml"; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/fulfillment-oldest-airflow.XXXXXX")
sandbox_pid=""
cleanup() {
    [ -n "$sandbox_pid" ] && kill "$sandbox_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "== Airflow $version: building the wheel, installing it in a fresh venv"
"$uv" build -q --wheel --out-dir "$work/dist" "$repo"
wheel=$(ls "$work"/dist/airflow_provider_fulfillment-*.whl)
"$python" -c "import sys, zipfile; sys.exit('airflow_provider_fulfillment/py.typed' not in zipfile.ZipFile(sys.argv[1]).namelist())" "$wheel" \
    || { echo "the wheel lacks airflow_provider_fulfillment/py.typed"; exit 1; }
"$uv" venv -q -p "$python" "$work/venv"
# Exactly this Airflow, with what was released up to the day after it: the set Airflow's own
# constraints file for that version pins (that file lives on a host CI cannot reach). Without the
# cut-off the resolver picks today's libraries, which older Airflows break on (3.2.0 with pydantic
# 2.14: "TITerminalStatePayload needs a discriminator field"): an existing Airflow was installed
# with its constraints, and this provider goes in beside it.
case "$version" in
    3.2.0) released=2026-04-08 ;;
    3.2.2) released=2026-05-30 ;;
    3.3.0) released=2026-07-07 ;;
    *) released=${AIRFLOW_RELEASED:?"set AIRFLOW_RELEASED=YYYY-MM-DD (the day after Airflow $version came out)"} ;;
esac
"$uv" pip install -q -p "$work/venv/bin/python" --exclude-newer "$released" \
    "apache-airflow==$version" "$wheel[sandbox,parquet,postgres,openlineage]"
"$work/venv/bin/python" -c "import airflow, sys; v = airflow.__version__; print('installed Airflow', v); sys.exit(v != '$version')"

export AIRFLOW_HOME="$work/home" AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__CORE__DAGS_FOLDER="$repo/dags"
unset PYTHONPATH
mkdir -p "$AIRFLOW_HOME"
cd "$work"  # nothing from the checkout on sys.path: the installed wheel only

echo "== imports, provider discovery, example DAGs"
"$work/venv/bin/python" "$repo/scripts/smoke_installed.py" "$repo/dags" 2>"$work/smoke.log" \
    || { tail -n 40 "$work/smoke.log"; exit 1; }

echo "== one example DAG end to end (airflow dags test) against the sandbox"
"$work/venv/bin/python" -m airflow_provider_fulfillment.sandbox --host 127.0.0.1 --port 0 \
    --env-file "$work/sandbox.env" >"$work/sandbox.log" 2>&1 &
sandbox_pid=$!
for _ in $(seq 1 120); do [ -s "$work/sandbox.env" ] && break; sleep 0.5; done
[ -s "$work/sandbox.env" ] || { cat "$work/sandbox.log"; exit 1; }
# shellcheck disable=SC1091
source "$work/sandbox.env"
"$work/venv/bin/airflow" db migrate >"$work/migrate.log" 2>&1 || { tail -n 40 "$work/migrate.log"; exit 1; }
if ! "$work/venv/bin/airflow" dags test example_fulfillment_orders_to_shipments 2026-01-01 >"$work/dag.log" 2>&1 \
    || ! grep -q "state=success\|DagRun Finished.*state=success\|final state: success" "$work/dag.log"; then
    tail -n 60 "$work/dag.log"
    echo "example_fulfillment_orders_to_shipments did not succeed on Airflow $version"
    exit 1
fi
echo "ok: the wheel installs, imports, is discovered, parses its DAGs and runs one on Airflow $version"
