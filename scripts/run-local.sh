#!/usr/bin/env bash
# `make run`: serve the iris sample model on http://127.0.0.1:8080 with a throwaway local
# redis-server as the cache (uncached when redis-server is not on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PORT=${PORT:-8080}
models=.local/models
[[ -f $models/iris.onnx ]] || "$VENV/bin/memoserve" dev sample-model --out "$models"

redis_args=()
if command -v redis-server >/dev/null; then
    redis_port=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    redis_dir=$(mktemp -d)
    redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$redis_dir" --logfile "$redis_dir/redis.log" --daemonize no &
    redis_pid=$!
    trap 'kill $redis_pid 2>/dev/null; wait $redis_pid 2>/dev/null; rm -rf "$redis_dir"' EXIT
    redis_args=(--redis-url "redis://127.0.0.1:$redis_port/0")
    echo "cache: redis-server on 127.0.0.1:$redis_port (stopped on exit)"
else
    echo "cache: off (no redis-server on PATH)"
fi

cat <<MSG
try it (first call a miss, second a hit; see the X-Memoserve-Cache header):
  curl -si -H 'Content-Type: application/json' http://127.0.0.1:$PORT/v2/models/iris/infer \\
    -d '{"inputs":[{"name":"float_input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}'
MSG
MEMOSERVE_LOG_FORMAT=${MEMOSERVE_LOG_FORMAT:-text} MEMOSERVE_DRAIN_SECONDS=${MEMOSERVE_DRAIN_SECONDS:-0} \
    "$VENV/bin/memoserve" serve --model-name iris --model-uri "$models/iris.onnx" \
    --model-format onnx --port "$PORT" "${redis_args[@]}"
