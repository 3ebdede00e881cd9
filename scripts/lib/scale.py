"""Helpers of scripts/scale-1m.sh (run by it, not by hand).

  scale.py gen N SAMPLE DIR   writes DIR/rows.csv (id,hash,start for N tokens: a UUID, as ids
                              are stored; the SHA-256 in hex of a real secret in keyward's
                              format, CRC32 checksum included, as stored without a pepper)
                              and DIR/sample.txt (SAMPLE + 1 of those secrets, chosen at random)
  scale.py startup URL ADMIN SECRET T0 TIMEOUT
                              polls POST /v1/verify for SECRET until it is VALID; prints the
                              seconds from T0 (a `date +%s.%N` taken just before the server was
                              started) to that answer
  scale.py cold URL ADMIN FILE
                              verifies every secret in FILE once (sequentially, one keep-alive
                              connection), then once more (now cached), and prints p50/p99/max
                              of both passes, in milliseconds, measured by this client
"""

import hashlib
import http.client
import json
import os
import random
import sys
import time
import urllib.parse
import uuid
import zlib

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def base62_fixed(value, n):
    out = []
    for _ in range(n):
        out.append(ALPHABET[value % 62])
        value //= 62
    return "".join(reversed(out))


def secret(rng, prefix="kw"):
    head = prefix + "_" + "".join(rng.choices(ALPHABET, k=43))
    return head + base62_fixed(zlib.crc32(head.encode()), 6)


def gen(n, sample, out):
    rng = random.Random(int.from_bytes(os.urandom(8), "little"))
    chosen = set(rng.sample(range(n), sample + 1))
    picked = []
    with open(os.path.join(out, "rows.csv"), "w") as rows:
        for i in range(n):
            s = secret(rng)
            h = hashlib.sha256(s.encode()).hexdigest()
            tid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            rows.write(f"{tid},{h},{s[:9]}\n")
            if i in chosen:
                picked.append(s)
    rng.shuffle(picked)
    with open(os.path.join(out, "sample.txt"), "w") as f:
        f.write("\n".join(picked) + "\n")


class Verifier:
    def __init__(self, url, admin):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port
        self.headers = {
            "Authorization": "Bearer " + admin,
            "Content-Type": "application/json",
        }
        self.conn = None

    def verify(self, token):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        body = json.dumps({"token": token, "permissions": ["orders:read"]})
        self.conn.request("POST", "/v1/verify", body, self.headers)
        res = self.conn.getresponse()
        data = res.read()
        return res.status, data


def startup(url, admin, token, t0, timeout):
    v = Verifier(url, admin)
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            status, data = v.verify(token)
            if status == 200 and json.loads(data).get("valid"):
                print(f"{time.time() - t0:.3f}")
                return
            v.conn = None
        except (OSError, http.client.HTTPException):
            v.conn = None
        time.sleep(0.01)
    sys.exit(f"no VALID answer within {timeout} s")


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def cold(url, admin, path):
    tokens = [t for t in open(path).read().split() if t]
    v = Verifier(url, admin)
    v.verify(tokens[0])  # the connection, the verifier credential's own cache entry
    for name in ("cold", "cached"):
        times = []
        for t in tokens[1:]:
            start = time.perf_counter()
            status, data = v.verify(t)
            times.append((time.perf_counter() - start) * 1000)
            if status != 200 or not json.loads(data).get("valid"):
                sys.exit(f"{name} verify answered {status}: {data[:200]!r}")
        print(
            f"{name:6} verify: n={len(times)} p50={pct(times, 50):.3f} ms "
            f"p99={pct(times, 99):.3f} ms max={max(times):.3f} ms"
        )


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "gen":
        gen(int(args[0]), int(args[1]), args[2])
    elif cmd == "startup":
        startup(args[0], args[1], args[2], float(args[3]), float(args[4]))
    elif cmd == "cold":
        cold(args[0], args[1], args[2])
    else:
        sys.exit(f"unknown command {cmd}")
