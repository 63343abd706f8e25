-- A workload where 9 requests in 10 repeat an earlier question (the cache front's case):
-- request k asks one of 100 hot questions unless k is a multiple of 10, then a new one.
--   hot:  {"inputs":[{"name":NAME,"shape":[1,4],"datatype":DTYPE,"data":[H.5,0.25,0.5,0.5]}]}
--   new:  ... "data":[RUN.5,COUNTER.25,0.75,0.5]  (RUN = BENCH_RUN_ID, so never repeated)
-- BENCH_NEW_EVERY (10): every how many requests a new question comes; 0: never (hot ones only).
-- BENCH_INPUT_NAME, BENCH_DATATYPE describe the model input; BENCH_LUA_DIR is this directory.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local summary = require("summary")

local head = string.format('{"inputs":[{"name":"%s","shape":[1,4],"datatype":"%s","data":[',
  os.getenv("BENCH_INPUT_NAME"), os.getenv("BENCH_DATATYPE"))
local run = tonumber(os.getenv("BENCH_RUN_ID"))
local counter = 0
local new_every = tonumber(os.getenv("BENCH_NEW_EVERY") or "10")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function request()
  counter = counter + 1
  local data
  if new_every > 0 and counter % new_every == 0 then
    data = string.format("%d.5,%d.25,0.75,0.5", run, counter)
  else
    data = string.format("%d.5,0.25,0.5,0.5", counter % 100)
  end
  return wrk.format(nil, nil, nil, head .. data .. "]}]}")
end

done = summary.done
