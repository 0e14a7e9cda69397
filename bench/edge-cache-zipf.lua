-- wrk: GET /large/<n> with n drawn from a Zipf distribution (s = 1.0) over
-- 10,000 objects (bench/compare-edge-cache.sh). The cumulative weights are
-- built once; each request is a binary search on a uniform draw.
local objects, s = 10000, 1.0
local cdf, total = {}, 0
for k = 1, objects do
    total = total + 1 / k ^ s
    cdf[k] = total
end
for k = 1, objects do cdf[k] = cdf[k] / total end
math.randomseed(11)
request = function()
    local u, lo, hi = math.random(), 1, objects
    while lo < hi do
        local mid = math.floor((lo + hi) / 2)
        if cdf[mid] < u then lo = mid + 1 else hi = mid end
    end
    return wrk.format("GET", "/large/" .. (lo - 1))
end
