#!/usr/bin/env python3
"""Writes the seed corpora in seeds/ (run from crates/kv/fuzz).

Usage: make_seeds.py [CAPTURE_DIR]

CAPTURE_DIR holds raw client->server byte streams recorded from real
redis-cli and redis-benchmark sessions (README.md, "Seed corpus", says how);
each file NAME becomes seeds/parse/NAME behind a 5-byte header (see
fuzz_targets/parse.rs). Hand-written edge cases are always written.
"""
import os
import sys

# flags: 1 unauthenticated, 2 default limits, 4 insert a ~64 KiB run, 8 byte-at-a-time
def header(flags=0, bulk=255, multibulk=255, seed=0x35, run=0):
    return bytes([flags, bulk, multibulk, seed, run])

HANDMADE_PARSE = {
    # What telnet / nc send: inline commands, CRLF or bare LF, quoting.
    "inline-telnet": header() + b'PING\r\nSET foo "bar baz"\r\nGET foo\r\n\r\nECHO \'it\\\'s\' "\\x41\\n"\r\nQUIT\n',
    "inline-bytewise": header(flags=8) + b'set k "v w"\nget k\r\n',
    "empty-commands": header() + b"*0\r\n*-1\r\n\r\n   \r\n*1\r\n$4\r\nPING\r\n",
    "limits-small": header(bulk=3, multibulk=2) + b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*3\r\n$3\r\nSET\r\n",
    "limits-bulk": header(bulk=3, multibulk=2) + b"*1\r\n$4\r\nPING\r\n",
    "unauth-args": header(flags=1, multibulk=20) + b"*11\r\n",
    "unauth-bulk": header(flags=3) + b"*2\r\n$4\r\nAUTH\r\n$16385\r\n",
    "prealloc-bulk": header(flags=2) + b"*2\r\n$3\r\nSET\r\n$40000\r\nxyz",
    "expected-bulk": header() + b"*2\r\n:1\r\n",
    "resp3-types": header() + b"%1\r\n+a\r\n:1\r\n~1\r\n>2\r\n#t\r\n,1.5\r\n_\r\n",
    "bad-lengths": header() + b"*1\r\n$-1\r\n*01\r\n$+1\r\n*9223372036854775808\r\n",
    "pad-mbulk-count": header(flags=4, seed=1, run=9) + b"*1\r\n$4\r\nPING\r\n",
    "pad-bulk-count": header(flags=4, seed=5, run=9) + b"*1\r\n$4\r\nPING\r\n",
    "pad-inline": header(flags=4, seed=0, run=7) + b"GET k\r\n",
}

HANDMADE_INLINE = {
    "quoted": b'SET foo "bar baz" \'it\\\'s\' "\\x41\\n\\t\\"x\\""',
    "midtoken-quote": b'set a"b c" d\'e f\'',
    "bad-hex": b'echo "\\xZZ" "\\x4"',
    "c-space": b"\x0bget\x0ca\x0bb\t\x0c",
    "unbalanced": b'set "a"b',
    "int-min": b"-9223372036854775808",
    "int-overflow": b"9223372036854775808",
    "int-zero": b"-0",
}

def write(directory, name, data):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)

def main():
    for name, data in HANDMADE_PARSE.items():
        write("seeds/parse", name, data)
    for name, data in HANDMADE_INLINE.items():
        write("seeds/inline_args", name, data)
    if len(sys.argv) > 1:
        capture = sys.argv[1]
        for name in sorted(os.listdir(capture)):
            with open(os.path.join(capture, name), "rb") as f:
                stream = f.read()[:4000]  # libFuzzer's default -max_len is 4096
            write("seeds/parse", name, header() + stream)
            write("seeds/parse", name + "-cut-unauth", header(flags=1, seed=0x47) + stream)

if __name__ == "__main__":
    main()
