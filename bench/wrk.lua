-- wrk script of the Kiva benchmark, driven by environment variables:
--   BENCH_MODE   stuff_sid | things_tid | post_delete | stuff_list | things_list | plain
--   BENCH_N      ids are drawn from 1..BENCH_N
--   BENCH_AUTH   the Authorization header ("Bearer …", "Basic …"), if any
--   BENCH_PREFIX the application's path prefix ("/api"; "" for an outside server)
--   BENCH_PATH   plain mode's path (default /version; an outside server's, BENCH_COMPARE_URL's)
-- done() prints one line "BENCH_JSON {…}" that bench.py reads.
local mode = os.getenv("BENCH_MODE") or "plain"
local n = tonumber(os.getenv("BENCH_N") or "1000")
local auth = os.getenv("BENCH_AUTH")
local prefix = os.getenv("BENCH_PREFIX") or "/api"
local headers = {}
if auth and auth ~= "" then headers["Authorization"] = auth end
local letters = { "A", "B", "C", "D" }
local counter, pending = 0, {}
tid = 0  -- global: thread:set() gives each thread its own

function setup(thread)
  tid = tid + 1
  thread:set("tid", tid)
end

function init(args)
  math.randomseed(os.time() * 1000 + (tid or 0))
end

local function get(path) return wrk.format("GET", prefix .. path, headers) end

function request()
  if mode == "stuff_sid" then
    return get("/stuff/" .. math.random(1, n))
  elseif mode == "things_tid" then
    return get("/things/" .. math.random(1, n))
  elseif mode == "stuff_list" then
    return get("/stuff?filter=" .. letters[math.random(1, 4)] .. "%25&limit=100")
  elseif mode == "things_list" then
    return get("/things?after=" .. math.random(0, n - 100) .. "&limit=100")
  elseif mode == "post_delete" then
    local sid = table.remove(pending)
    if sid then return wrk.format("DELETE", prefix .. "/stuff/" .. sid, headers) end
    counter = counter + 1
    local body = "stuff=bench-" .. tid .. "-" .. os.time() .. "-" .. math.random(1, 1e9) .. "-" .. counter
    local h = { ["Content-Type"] = "application/x-www-form-urlencoded" }
    return wrk.format("POST", prefix .. "/stuff", h, body)
  end
  return wrk.format("GET", prefix .. (os.getenv("BENCH_PATH") or "/version"), headers)
end

if mode == "post_delete" then
  function response(status, hdrs, body)
    if status == 201 then
      local sid = body:match('"sid"%s*:%s*(%d+)')
      if sid then table.insert(pending, sid) end
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
