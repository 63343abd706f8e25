#!/usr/bin/env bash
# The serving bench (`make bench`): raw ASGI ceiling, memoserve hit and miss paths, MLServer,
# each started in turn on CPU 0 and driven by wrk on CPU 1. Prints a markdown table and writes
# it to bench/results/serving-<timestamp>.md. Extra arguments go to bench.py, e.g.
#   bash bench/serving/run.sh --only raw,hit-onnx --measure 5
# or, after --grpc, to grpc_bench.py (gRPC: ceiling, memoserve hit, MLServer), e.g.
#   bash bench/serving/run.sh --grpc --rounds 3
# See bench/serving/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-.venv}
export MLSERVER_VENV=${MLSERVER_VENV:-$PWD/.local/mlserver}

for tool in wrk redis-server redis-cli taskset timeout; do
    command -v "$tool" >/dev/null || { echo "bench: $tool not found (make system-deps)" >&2; exit 1; }
done
[[ -x $VENV/bin/memoserve ]] || { echo "bench: no $VENV/bin/memoserve (make install)" >&2; exit 1; }
if (($(nproc) < 2)); then
    echo "bench: needs 2 CPUs (server on CPU 0, wrk + redis on CPU 1); this machine has $(nproc)" >&2
    exit 1
fi

# MLServer lives in its own virtualenv (scripts/mlserver-venv.sh, shared with the tests). A
# failed install is reported in the table, not fatal.
mkdir -p .local/bench
if ! VENV=$VENV MLSERVER_VENV=$MLSERVER_VENV bash scripts/mlserver-venv.sh >.local/bench/mlserver-install.log 2>&1; then
    echo "bench: MLServer install failed (see .local/bench/mlserver-install.log); its row will say so" >&2
    rm -rf "$MLSERVER_VENV"
fi

# bench.py stops every server it starts; this trap covers the case where it dies first.
pidfile=$(mktemp)
bench_pid=""
cleanup() {
    [[ -n $bench_pid ]] && kill -TERM "$bench_pid" 2>/dev/null && wait "$bench_pid" 2>/dev/null
    while read -r pid; do
        [[ -n $pid ]] && kill -KILL -- "-$pid" 2>/dev/null
    done <"$pidfile"
    rm -f "$pidfile"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# `run.sh --grpc [...]`: the gRPC bench (grpc_bench.py) with the same MLServer virtualenv.
script=bench/serving/bench.py
if [[ ${1:-} == --grpc ]]; then
    script=bench/serving/grpc_bench.py
    shift
fi
"$VENV/bin/python" "$script" --pidfile "$pidfile" "$@" &
bench_pid=$!
status=0
wait "$bench_pid" || status=$?
bench_pid=""
exit "$status"
