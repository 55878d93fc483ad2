-- wrk script for MCP tools/call: a unique JSON-RPC id per request, every response checked, and the
-- raw latency histogram written out so the bench can undo wrk's coordinated-omission correction.
-- Settings come from the environment (wrk passes no script arguments to setup):
--   WRK_BODY_HEAD, WRK_BODY_TAIL  the request body around the id: HEAD .. id .. TAIL
--   WRK_EXPECT                    text every successful result contains
--   WRK_OUT                       file the summary is written to (JSON)

wrk.method = "POST"
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

local head, tail, expect
local next_id, outstanding
-- Per thread: calls answered correctly, and calls answered with anything else.
ok, bad, first_bad = 0, 0, ""

function init(args)
  head = os.getenv("WRK_BODY_HEAD")
  tail = os.getenv("WRK_BODY_TAIL")
  expect = os.getenv("WRK_EXPECT")
  -- Ids never repeat across threads: each thread counts in its own billion.
  next_id = tid * 1000000000
  outstanding = {}
end

function request()
  next_id = next_id + 1
  outstanding[next_id] = true
  return wrk.format(nil, nil, nil, head .. next_id .. tail)
end

local function refuse(why)
  bad = bad + 1
  if first_bad == "" then first_bad = why end
end

function response(status, headers, body)
  if status ~= 200 then return refuse("HTTP " .. status .. ": " .. string.sub(body or "", 1, 200)) end
  local id = tonumber(string.match(body, '"id":(%d+)'))
  if id == nil or not outstanding[id] then return refuse("no outstanding id in " .. string.sub(body, 1, 200)) end
  outstanding[id] = nil
  if string.find(body, '"error":', 1, true) or string.find(body, '"isError":true', 1, true) then
    return refuse("error result: " .. string.sub(body, 1, 200))
  end
  if not string.find(body, expect, 1, true) then return refuse("unexpected result: " .. string.sub(body, 1, 200)) end
  ok = ok + 1
end

local function quote(s)
  return '"' .. string.gsub(s, '[%c"\\]', function(c) return string.format("\\u%04x", string.byte(c)) end) .. '"'
end

function done(summary, latency, requests)
  local good, wrong, why = 0, 0, ""
  for _, t in ipairs(threads) do
    good = good + t:get("ok")
    wrong = wrong + t:get("bad")
    if why == "" then why = t:get("first_bad") end
  end
  -- The histogram as wrk holds it after its correction: [microseconds, count] pairs.
  local hist = {}
  -- latency(i) is the i-th populated bucket: its microseconds and its count.
  for i = 1, #latency do
    local us, n = latency(i)
    table.insert(hist, "[" .. string.format("%d", us) .. "," .. string.format("%d", n) .. "]")
  end
  local e = summary.errors
  local f = assert(io.open(os.getenv("WRK_OUT"), "w"))
  f:write(string.format(
    '{"durationUs":%d,"requests":%d,"ok":%d,"bad":%d,"firstBad":%s,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},"histogram":[%s]}\n',
    summary.duration, summary.requests, good, wrong, quote(why),
    e.connect, e.read, e.write, e.status, e.timeout, table.concat(hist, ",")))
  f:close()
end
