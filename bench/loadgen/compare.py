#!/usr/bin/env python3
"""A/B of two load generators against one server: uringd bench (A) and wrk (B).

Each run starts one generator pinned to --cpu with one thread, waits for it, and reads its
own CPU time (user+sys, from wait4's rusage) and the requests it completed. A and B
alternate (A B A B ...). Reports medians and the median of pairwise ratios A/B of CPU
time per completed request, the generator's cost of producing load.
"""
import argparse, json, os, re, statistics, subprocess, tempfile

def wrk_script(depth):
    # wrk has no pipelining flag: a Lua script makes each write carry `depth` requests.
    f = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    f.write("init = function(args)\n"
            "  local r = {}\n"
            f"  for i = 1, {depth} do r[i] = wrk.format() end\n"
            "  req = table.concat(r)\nend\n"
            "request = function() return req end\n")
    f.close()
    return f.name

def run(cmd):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = p.stdout.read()
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    if status != 0:
        raise SystemExit(f"{cmd[0]} failed ({status}): {err}")
    return out, ru.ru_utime + ru.ru_stime

def uringd(args):
    cmd = ["taskset", "-c", str(args.cpu), args.uringd, "bench", args.url, "-t", "1",
           "-c", str(args.conns), "-d", f"{args.duration}s", "--pipeline", str(args.pipeline), "--json"]
    out, cpu = run(cmd)
    v = json.loads(out)
    return v["requests"], cpu, v["requests_per_sec"]

def wrk(args, script):
    cmd = ["taskset", "-c", str(args.cpu), "wrk", "-t1", "-c", str(args.conns), "-d", f"{args.duration}s"]
    if script:
        cmd += ["-s", script]
    cmd.append(args.url)
    out, cpu = run(cmd)
    n = int(re.search(r"(\d+) requests in", out).group(1))
    if "Socket errors" in out or "Non-2xx" in out:
        raise SystemExit("wrk saw errors:\n" + out)
    return n, cpu, float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--uringd", default="target/release/uringd")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--duration", type=int, default=3)
    p.add_argument("--conns", type=int, default=64)
    p.add_argument("--pipeline", type=int, default=1)
    p.add_argument("--cpu", type=int, default=1)
    a = p.parse_args()
    script = wrk_script(a.pipeline) if a.pipeline > 1 else None
    rows = []
    for _ in range(a.runs):
        na, ca, ra = uringd(a)
        nb, cb, rb = wrk(a, script)
        rows.append(((ca / na) * 1e6, (cb / nb) * 1e6, ra, rb))
    med = lambda xs: statistics.median(xs)
    res = {
        "a_cpu_per_req_us": med([r[0] for r in rows]),
        "b_cpu_per_req_us": med([r[1] for r in rows]),
        "a_rps": med([r[2] for r in rows]),
        "b_rps": med([r[3] for r in rows]),
        "cpu_per_req_ratio": med([r[0] / r[1] for r in rows]),
        "rps_ratio": med([r[2] / r[3] for r in rows]),
    }
    print("uringd bench: %(a_rps).0f req/s, %(a_cpu_per_req_us).3f us CPU/req | "
          "wrk: %(b_rps).0f req/s, %(b_cpu_per_req_us).3f us CPU/req | "
          "A/B CPU/req %(cpu_per_req_ratio).3f, A/B req/s %(rps_ratio).3f" % res)
    print("pairwise CPU/req ratios:", " ".join("%.3f" % (r[0] / r[1]) for r in rows))

if __name__ == "__main__":
    main()
