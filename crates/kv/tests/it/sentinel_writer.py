"""Writes through redis-py's Sentinel client across a failover.

Usage: sentinel_writer.py SECONDS PORT [PORT...]. Each write is
SET + WAIT 1; a key counts as acknowledged when WAIT says one replica has
it. Errors (the primary died, a replica answered READONLY) are retried
with a fresh lookup. Prints one JSON object: acknowledged keys, and how
many writes succeeded after the first failure.
"""
import json
import sys
import time

import redis
from redis.sentinel import Sentinel

seconds = float(sys.argv[1])
sentinels = [("127.0.0.1", int(p)) for p in sys.argv[2:]]
sentinel = Sentinel(sentinels, socket_timeout=0.5)
acked, failures, after_failure, i = [], 0, 0, 0
deadline = time.time() + seconds
while time.time() < deadline:
    key = f"py:{i}"
    i += 1
    try:
        master = sentinel.master_for("mymaster", socket_timeout=0.5)
        master.set(key, key)
        if master.wait(1, 1000) >= 1:
            acked.append(key)
            if failures:
                after_failure += 1
    except (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError, redis.ResponseError) as e:
        if failures < 1:
            print(f"first failed write (retried): {e!r}", file=sys.stderr)
        failures += 1
        time.sleep(0.05)
print(json.dumps({"acked": acked, "failures": failures, "after_failure": after_failure}))
