#!/usr/bin/env python3
"""Writes the bench/compress corpus into DIR: api.json (a JSON API answer, 128 KiB) and
bundle.js (a JavaScript bundle, 512 KiB), generated from a fixed seed so every run and
every machine compresses the same bytes. Shaped like the real thing: repeated keys and
identifiers, varied values, string literals, whitespace of minified-but-readable code."""
import json, random, sys

out = sys.argv[1]
rng = random.Random(18)
words = ("user order item price total status created updated name email address city "
         "country active pending shipped cancelled description quantity discount").split()

def api(n):
    rows, size = [], 0
    i = 0
    while size < n:
        r = {"id": 100000 + i, "name": f"{rng.choice(words).title()} {rng.choice(words)}",
             "email": f"{rng.choice(words)}{rng.randrange(1000)}@example.com",
             "status": rng.choice(["active", "pending", "shipped", "cancelled"]),
             "price": round(rng.uniform(1, 500), 2), "quantity": rng.randrange(1, 20),
             "tags": rng.sample(words, 3), "created": f"2026-{rng.randrange(1,13):02}-{rng.randrange(1,29):02}T{rng.randrange(24):02}:{rng.randrange(60):02}:00Z"}
        rows.append(r)
        size += len(json.dumps(r)) + 2
        i += 1
    return json.dumps({"count": len(rows), "results": rows}, indent=1).encode()[:n]

def bundle(n):
    parts, size, i = [], 0, 0
    while size < n:
        a, b = rng.choice(words), rng.choice(words)
        f = (f"function {a}_{b}_{i}(e, t) {{\n  var n = e.{a} || {{}};\n"
             f"  if (n.{b} === void 0) {{ return t.{rng.choice(words)}(\"{a} {b} {rng.randrange(10**6)}\"); }}\n"
             f"  for (var r = 0; r < n.length; r++) {{ t.push(n[r].{rng.choice(words)} * {rng.randrange(1, 99)}); }}\n"
             f"  return {{ {a}: n, {b}: t, id: {i} }};\n}}\n")
        parts.append(f)
        size += len(f)
        i += 1
    return "".join(parts).encode()[:n]

open(f"{out}/api.json", "wb").write(api(128 * 1024))
open(f"{out}/bundle.js", "wb").write(bundle(512 * 1024))
