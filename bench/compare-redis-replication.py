#!/usr/bin/env python3
"""Primary-replica replication, our kv against redis-server (chapter 1's
database replication, issue 18's replication benchmark).

Usage: bench/compare-redis-replication.py path/to/hyperscale [keys] [runs]
  keys  keys loaded before the full sync (default 1000000), runs per server
  (default 3; medians are printed).

For each server kind (ours: `hyperscale kv serve --engine memory`; redis:
`redis-server --save '' --appendonly no --repl-diskless-sync yes
--repl-diskless-sync-delay 0`, so neither waits before sending its
snapshot), each run:
  1. starts a primary and loads `keys` string keys (16-byte values) with
     `redis-cli --pipe`;
  2. starts an empty replica of the same kind and times `REPLICAOF` until
     the replica reports `master_link_status:up`, no sync in progress, and
     holds every key: the full-sync time (RDB snapshot + transfer + load);
  3. runs `redis-benchmark -t set -c 50 -P 16 -n 300000 -r 1000000 -d 16`
     on the primary and meanwhile, every 50 ms, writes a probe key to the
     primary and times until the replica returns it: the replica lag under
     a write load (median and p99 over the probes), with the load's
     requests/s (a faster server makes more to replicate).
Prints a markdown table of medians with ours/redis ratios and the machine
load before and after. Servers are always killed on exit.
"""

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout_s=10.0):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"server on port {port} did not start")


class Resp:
    """A minimal RESP client over one connection (inline commands)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), 5)
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind in (b"+", b":"):
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self.buf += self.sock.recv(65536)
            data, self.buf = self.buf[:n], self.buf[n + 2 :]
            return data.decode(errors="replace")
        if kind == b"*":
            return [self._read() for _ in range(int(rest))]
        raise RuntimeError(f"unexpected reply {line!r}")

    def call(self, *args):
        out = f"*{len(args)}\r\n".encode()
        for a in args:
            a = str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)
        return self._read()


def info(conn, section="replication"):
    text = conn.call("INFO", section)
    return dict(
        line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#")
    )


def start(kind, binary, port, work):
    d = os.path.join(work, f"{kind}-{port}")
    os.makedirs(d)
    log = open(os.path.join(d, "log"), "w")
    if kind == "ours":
        cmd = [binary, "kv", "serve", "--engine", "memory", "--bind", f"127.0.0.1:{port}",
               "--data-dir", os.path.join(d, "data")]
    else:
        cmd = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
               "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0", "--dir", d]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    wait_port(port)
    return proc


def load(port, dataset):
    with open(dataset, "rb") as f:
        out = subprocess.run(["redis-cli", "-p", str(port), "--pipe"], stdin=f,
                             capture_output=True, text=True, check=True)
    if "errors: 0" not in out.stdout:
        raise SystemExit(f"loading failed: {out.stdout}")


def make_dataset(path, keys):
    with open(path, "wb") as f:
        for i in range(keys):
            k = b"key:%09d" % i
            v = b"v%015d" % i
            f.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$16\r\n%s\r\n" % (len(k), k, v))


def full_sync(primary_port, replica_port, keys):
    replica = Resp(replica_port)
    started = time.perf_counter()
    replica.call("REPLICAOF", "127.0.0.1", primary_port)
    deadline = time.time() + 600
    while time.time() < deadline:
        fields = info(replica)
        if fields.get("master_link_status") == "up" and fields.get("master_sync_in_progress") == "0":
            if int(replica.call("DBSIZE")) >= keys:
                return time.perf_counter() - started
        time.sleep(0.01)
    raise SystemExit("the full sync did not finish in 600 s")


def lag_under_load(primary_port, replica_port):
    done = threading.Event()
    result = {}

    def bench():
        out = subprocess.run(
            ["redis-benchmark", "-p", str(primary_port), "-t", "set", "-c", "50", "-P", "16",
             "-n", "300000", "-r", "1000000", "-d", "16", "--csv"],
            capture_output=True, text=True, check=True)
        for line in out.stdout.splitlines():
            cells = [c.strip('"') for c in line.split(",")]
            if cells[0] == "SET":
                result["rps"] = float(cells[1])
        done.set()

    thread = threading.Thread(target=bench)
    thread.start()
    primary, replica = Resp(primary_port), Resp(replica_port)
    lags_ms = []
    i = 0
    while not done.is_set():
        i += 1
        key = f"lagprobe:{i}"
        primary.call("SET", key, "1")
        sent = time.perf_counter()
        while replica.call("GET", key) is None:
            if time.perf_counter() - sent > 30:
                raise SystemExit("a probe did not reach the replica in 30 s")
        lags_ms.append((time.perf_counter() - sent) * 1000)
        time.sleep(0.05)
    thread.join()
    lags_ms.sort()
    p99 = lags_ms[min(len(lags_ms) - 1, int(len(lags_ms) * 0.99))]
    return statistics.median(lags_ms), p99, result.get("rps", 0.0), len(lags_ms)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    binary = os.path.abspath(sys.argv[1])
    keys = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    for tool in ("redis-server", "redis-cli", "redis-benchmark"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found (apt-get install redis-server redis-tools)")
    work = tempfile.mkdtemp()
    procs = []
    try:
        dataset = os.path.join(work, "dataset.resp")
        make_dataset(dataset, keys)
        load_before = loadavg()
        rows = {}
        # Interleaved (ours, redis, ours, ...): a load spike hits both.
        for run in range(runs):
            for kind in ("ours", "redis"):
                pp, rp = free_port(), free_port()
                primary = start(kind, binary, pp, work)
                procs.append(primary)
                load(pp, dataset)
                replica = start(kind, binary, rp, work)
                procs.append(replica)
                sync_s = full_sync(pp, rp, keys)
                lag_p50, lag_p99, rps, probes = lag_under_load(pp, rp)
                rows.setdefault(kind, []).append((sync_s, lag_p50, lag_p99, rps))
                print(f"run {run + 1} {kind}: full sync {sync_s:.2f} s, lag p50 {lag_p50:.2f} ms "
                      f"p99 {lag_p99:.2f} ms over {probes} probes at {rps:.0f} SET/s",
                      file=sys.stderr, flush=True)
                for p in (replica, primary):
                    p.kill()
                    p.wait()
                procs.clear()
        load_after = loadavg()
        med = {k: [statistics.median(col) for col in zip(*v)] for k, v in rows.items()}
        o, r = med["ours"], med["redis"]
        print(f"keys {keys}, medians of {runs}; load average before {load_before}, after {load_after}")
        print()
        print("| measure | ours | redis-server 7.0 | ours/redis |")
        print("|---|---:|---:|---:|")
        names = ["full sync (s, lower is better)", "replica lag p50 under load (ms)",
                 "replica lag p99 under load (ms)", "write load while measuring (SET/s)"]
        for i, name in enumerate(names):
            print(f"| {name} | {o[i]:.2f} | {r[i]:.2f} | {o[i] / r[i]:.2f}x |")
    finally:
        for p in procs:
            p.kill()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
