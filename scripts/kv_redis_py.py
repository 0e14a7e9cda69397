"""redis-py (PyPI `redis`) against `hyperscale kv serve`: a client that is not
ours, in a second language, exercising documented behaviours of its own
(pipelines, transactions, pub/sub, Lua via register_script, streams with
consumer groups, hashes and sorted sets through its reply parsers).

Usage: python3 scripts/kv_redis_py.py PORT   (exits non-zero on the first failure)
"""
import sys
import time

import redis

port = int(sys.argv[1])
r = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
r.flushall()
checks = 0


def check(what, got, want):
    global checks
    checks += 1
    if got != want:
        raise SystemExit(f"FAIL {what}: expected {want!r}, got {got!r}")
    print(f"ok   {what}")


# Pipelines: non-transactional and MULTI/EXEC.
p = r.pipeline(transaction=False)
p.set("a", 1).incr("a").get("a")
check("pipeline", p.execute(), [True, 2, "2"])
p = r.pipeline(transaction=True)
p.incr("a").incrby("a", 10)
check("transaction", p.execute(), [3, 13])


def watched(pipe):
    value = int(pipe.get("a"))
    pipe.multi()
    pipe.set("a", value * 2)


check("transaction with WATCH", r.transaction(watched, "a"), [True])
check("after WATCH transaction", r.get("a"), "26")

# Hashes and sorted sets through redis-py's reply parsers.
r.hset("user:1", mapping={"name": "ada", "born": "1815"})
check("hgetall", r.hgetall("user:1"), {"name": "ada", "born": "1815"})
check("hincrby", r.hincrby("user:1", "born", 1), 1816)
r.zadd("board", {"ann": 3.5, "bob": 1, "cid": 2})
check("zrange withscores", r.zrange("board", 0, -1, withscores=True),
      [("bob", 1.0), ("cid", 2.0), ("ann", 3.5)])
check("zrevrank", r.zrevrank("board", "bob"), 2)
check("zincrby", r.zincrby("board", 0.25, "bob"), 1.25)

# Lua through register_script (EVALSHA, falling back to EVAL on NOSCRIPT).
r.script_flush()
bump = r.register_script(
    "local v = redis.call('INCRBY', KEYS[1], ARGV[1]) "
    "if v > tonumber(ARGV[2]) then return redis.error_reply('too high') end "
    "return v")
check("register_script first call", bump(keys=["n"], args=[5, 100]), 5)
check("register_script cached call", bump(keys=["n"], args=[5, 100]), 10)
try:
    bump(keys=["n"], args=[500, 100])
    raise SystemExit("FAIL script error: no exception")
except redis.ResponseError as err:
    check("script error_reply", str(err), "too high")

# Pub/sub.
ps = r.pubsub()
ps.subscribe("news")
deadline = time.time() + 5
message = ps.get_message(timeout=1.0)
check("subscribe confirmation", message["type"], "subscribe")
check("publish count", r.publish("news", "hello"), 1)
message = None
while message is None and time.time() < deadline:
    message = ps.get_message(timeout=1.0)
check("pubsub message", (message or {}).get("data"), "hello")
ps.close()

# Streams with consumer groups.
r.xadd("jobs", {"task": "a"}, id="1-1")
r.xadd("jobs", {"task": "b"}, id="2-1")
r.xgroup_create("jobs", "workers", id="0")
got = r.xreadgroup("workers", "w1", {"jobs": ">"}, count=1)
check("xreadgroup", got, [["jobs", [("1-1", {"task": "a"})]]])
check("xpending count", r.xpending("jobs", "workers")["pending"], 1)
check("xack", r.xack("jobs", "workers", "1-1"), 1)
check("xpending after ack", r.xpending("jobs", "workers")["pending"], 0)
check("xlen", r.xlen("jobs"), 2)

print(f"{checks} redis-py checks passed")
