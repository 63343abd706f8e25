-- The same POST body on every request (the cache-hit rows).
-- BENCH_BODY_FILE: the JSON body; BENCH_LUA_DIR: this directory.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local summary = require("summary")

local f = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"

done = summary.done
