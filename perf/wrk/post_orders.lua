-- wrk -t2 -c64 -d10s -s perf/wrk/post_orders.lua http://127.0.0.1:9999 [-- KEYS PRODUCTS]
-- POST /orders with a unique idempotency key per request. Keys are generated
-- in init (per thread, seeded differently) so request() only picks the next
-- one. KEYS: keys per thread (default 200000; a run sends at most that many
-- per thread). PRODUCTS: comma-separated product ids (default 1,2,3,4,5).
-- The summary counts answers by status.

local keys, next_key, products = {}, 0, {}
counts = {}  -- global: done() reads it from each thread
local threads = {}

local function uuid_v4()
   local b = {}
   for i = 1, 16 do b[i] = math.random(0, 255) end
   b[7] = (b[7] % 16) + 0x40          -- version 4
   b[9] = (b[9] % 64) + 0x80          -- RFC 4122 variant
   local hex = string.format(string.rep("%02x", 16), unpack(b))
   return hex:sub(1, 8) .. "-" .. hex:sub(9, 12) .. "-" .. hex:sub(13, 16) .. "-"
       .. hex:sub(17, 20) .. "-" .. hex:sub(21, 32)
end

function setup(thread)
   thread:set("thread_id", #threads + 1)
   table.insert(threads, thread)
end

function init(args)
   local n = tonumber(args[1]) or 200000
   for p in string.gmatch(args[2] or "1,2,3,4,5", "%d+") do table.insert(products, p) end
   math.randomseed(os.time() * 1000 + (thread_id or 0) * 7919)
   for i = 1, n do keys[i] = uuid_v4() end
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
end

request = function()
   next_key = next_key + 1
   local key = keys[(next_key - 1) % #keys + 1]
   local product = products[math.random(1, #products)]
   local body = '{"product_id":' .. product .. ',"idempotency_key":"' .. key
       .. '","customer_id":"wrk_' .. (thread_id or 0) .. '","quantity":' .. math.random(1, 3) .. '}'
   return wrk.format(nil, "/orders", nil, body)
end

response = function(status)
   counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
   local total = {}
   for _, t in ipairs(threads) do
      local c = t:get("counts")
      for status, n in pairs(c) do total[status] = (total[status] or 0) + n end
   end
   local line = "status counts:"
   for status, n in pairs(total) do line = line .. " " .. status .. "=" .. n end
   print(line)
end
