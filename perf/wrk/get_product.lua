-- wrk -t2 -c64 -d10s -s perf/wrk/get_product.lua http://127.0.0.1:9999
-- GET /products/{id}, cycling through the five seeded products.
local id = 0
request = function()
   id = id % 5 + 1
   return wrk.format("GET", "/products/" .. id)
end
