#!/usr/bin/env bash
# MLServer (and its scikit-learn runtime) in a virtualenv of its own: it pins an older
# starlette/fastapi than memoserve. Used by the cache front's tests (tests/serving/front) and
# by the serving bench. uvloop<0.22 because newer ones break its parallel workers;
# scikit-learn pinned to the version that writes the sample models. Idempotent: a marker holds
# the spec it was installed with. Prints the virtualenv's path on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
MLSERVER_VENV=${MLSERVER_VENV:-$PWD/.local/mlserver}
spec=("mlserver>=1.7,<1.8" "mlserver-sklearn>=1.7,<1.8" "uvloop<0.22" "httptools")
sklearn=$("$VENV/bin/python" -c 'import sklearn; print(sklearn.__version__)')
marker=$MLSERVER_VENV/.installed
wanted="${spec[*]} scikit-learn==$sklearn"
if [[ ! -f $marker || $(cat "$marker") != "$wanted" ]]; then
    echo "installing MLServer into $MLSERVER_VENV" >&2
    rm -rf "$MLSERVER_VENV"
    python3 -m venv "$MLSERVER_VENV"
    "$MLSERVER_VENV/bin/pip" install -q --upgrade pip >&2
    "$MLSERVER_VENV/bin/pip" install -q "${spec[@]}" "scikit-learn==$sklearn" >&2
    echo "$wanted" >"$marker"
fi
echo "$MLSERVER_VENV"
