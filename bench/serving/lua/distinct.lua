-- A different v2 request on every request (the cache-miss rows):
--   {"inputs":[{"name":NAME,"shape":[1,N],"datatype":DTYPE,"data":[RUN+0.5, COUNTER+0.25, 0.5, ...]}]}
-- RUN (BENCH_RUN_ID) differs between wrk invocations of one bench run, so no request ever repeats;
-- both values stay exact in FP32 (below 2^22). BENCH_INPUT_NAME, BENCH_DATATYPE, BENCH_FEATURES
-- describe the model input; BENCH_LUA_DIR is this directory.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local summary = require("summary")

local features = tonumber(os.getenv("BENCH_FEATURES"))
local prefix = string.format(
  '{"inputs":[{"name":"%s","shape":[1,%d],"datatype":"%s","data":[%d.5,',
  os.getenv("BENCH_INPUT_NAME"), features, os.getenv("BENCH_DATATYPE"),
  tonumber(os.getenv("BENCH_RUN_ID")))
local suffix = string.rep(",0.5", features - 2) .. "]}]}"
local counter = 0

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function request()
  counter = counter + 1
  return wrk.format(nil, nil, nil, prefix .. counter .. ".25" .. suffix)
end

done = summary.done
