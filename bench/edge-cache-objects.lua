-- wrk: GET one of 100 small objects at random (bench/compare-edge-cache.sh).
math.randomseed(7)
request = function()
    return wrk.format("GET", "/small/" .. math.random(0, 99))
end
