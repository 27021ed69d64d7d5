"""Checks the rendered Kubernetes manifests, then runs the Indexed Job on this machine.

Called by scripts/k8s-check.sh with: BIN RENDERED_YAML PODMONITOR_YAML WORKDIR DURATION.

The static checks read what a reviewer would: an Indexed Job with completions =
parallelism = SHARDS, `--shard auto` and `--start-at`, credentials only from a Secret, a
ReadWriteMany volume, resources set, scrape annotations that match the PodMonitor.

The simulation gives N processes the generator pods' command line and environment as the
kubelet would (each `$(VAR)` expanded from the container's env; JOB_COMPLETION_INDEX set as
the Job controller sets it), against one `scimload serve`, then runs the merge Job's
command. Three things differ from a cluster, each because the pods would be apart and
these processes are not: the volume's mount path is a local directory, each metrics
listener takes a free port instead of 9464, and the run is shorter (DURATION) with a start
a few seconds ahead and its own run id. Every figure the issue names is checked, and the
merge's percentiles are recomputed here from the shards' own interval logs with another
HdrHistogram implementation (the `hdrhistogram` package), summed, and compared exactly.
"""

import datetime
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import yaml
from hdrh.histogram import HdrHistogram

BIN, RENDERED, PODMONITOR, WORK, DURATION = sys.argv[1:6]
failures = []


def check(ok, what):
    print(("  ok    " if ok else "  FAIL  ") + what)
    if not ok:
        failures.append(what)


docs = [d for d in yaml.safe_load_all(open(RENDERED)) if d]
by_kind = {}
for d in docs:
    by_kind.setdefault(d["kind"], []).append(d)
jobs = {j["metadata"]["name"]: j for j in by_kind.get("Job", [])}
bench, merge = jobs["scimload-bench"], jobs["scimload-merge"]
(cm,) = [c for c in by_kind["ConfigMap"] if c["metadata"]["name"].startswith("scimload-run")]
run = dict(cm["data"])
(pvc,) = by_kind["PersistentVolumeClaim"]


def container(job):
    (c,) = job["spec"]["template"]["spec"]["containers"]
    return c


print("manifests:")
shards = int(run["SHARDS"])
spec = bench["spec"]
check(spec.get("completionMode") == "Indexed", "the generators are an Indexed Job")
check(
    spec["completions"] == spec["parallelism"] == shards,
    f"completions = parallelism = SHARDS ({spec['completions']}, {spec['parallelism']}, {shards})",
)
bc, mc = container(bench), container(merge)
check(
    "--shard" in bc["args"] and bc["args"][bc["args"].index("--shard") + 1] == "auto",
    "the pods run --shard auto",
)
check("--start-at" in bc["args"], "the pods start at one --start-at")
check(
    "--shards" in mc["args"] and "--wait" in mc["args"],
    "the merge Job waits for --shards N",
)
for c, name in ((bc, "generator"), (mc, "merge")):
    envs = {e["name"]: e for e in c.get("env", [])}
    secret_vars = [n for n in ("SCIM_TARGET", "SCIM_TOKEN", "SCIM_OAUTH_CLIENT_SECRET") if n in envs]
    check(
        all("secretKeyRef" in envs[n].get("valueFrom", {}) for n in secret_vars)
        and all("value" not in envs[n] for n in secret_vars),
        f"{name}: target and credentials only from a Secret ({', '.join(secret_vars) or 'none needed'})",
    )
    r = c.get("resources", {})
    check(
        "requests" in r and "limits" in r and "cpu" in r["requests"] and "memory" in r["limits"],
        f"{name}: resource requests and limits set",
    )
check("ReadWriteMany" in pvc["spec"]["accessModes"], "results on a ReadWriteMany volume")
mounts = {m["mountPath"] for c in (bc, mc) for m in c["volumeMounts"]}
check(len(mounts) == 1, f"shards and merge mount the results at one path ({mounts})")
(mount,) = mounts
tmpl = bench["spec"]["template"]["metadata"]
ann = tmpl.get("annotations", {})
listen = bc["args"][bc["args"].index("--metrics-listen") + 1]
check(
    ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == listen.rsplit(":", 1)[1],
    "scrape annotations name the --metrics-listen port",
)
pm = yaml.safe_load(open(PODMONITOR))
sel = pm["spec"]["selector"]["matchLabels"]
check(
    all(tmpl["labels"].get(k) == v for k, v in sel.items()),
    f"the PodMonitor selects the generator pods ({sel})",
)
ports = [p["name"] for p in bc.get("ports", [])]
check(
    pm["spec"]["podMetricsEndpoints"][0]["port"] in ports,
    "the PodMonitor scrapes a named container port",
)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def rfc3339(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_ns(text):
    """An RFC 3339 UTC time with up to 9 fractional digits, as epoch nanoseconds."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z", text)
    base = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    frac = (m.group(2) or "").ljust(9, "0")
    return int(base.timestamp()) * 10**9 + int(frac)


port = free_port()
token = "k8s-sim-" + str(os.getpid())
target = f"http://127.0.0.1:{port}"
results = os.path.join(WORK, "results")
os.makedirs(results)
server = subprocess.Popen(
    [BIN, "serve", "--listen", f"127.0.0.1:{port}"],
    env={**os.environ, "SCIM_TOKEN": token},
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
)
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        break
    except OSError:
        time.sleep(0.1)

start = int(time.time()) + 9
run.update(START_AT=rfc3339(start), RUN_ID=f"sim{start}", DURATION=DURATION)
secret = {"target": target, "token": token}


def pod_env(c, index=None, secret=secret):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    if index is not None:
        env["JOB_COMPLETION_INDEX"] = str(index)
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
            continue
        src = e["valueFrom"]
        if "configMapKeyRef" in src:
            env[e["name"]] = run[src["configMapKeyRef"]["key"]]
        elif "secretKeyRef" in src:
            ref = src["secretKeyRef"]
            if ref["key"] in secret:
                env[e["name"]] = secret[ref["key"]]
            elif not ref.get("optional"):
                raise SystemExit(f"the Secret lacks {ref['key']}")
    return env


def pod_args(c, env):
    """The kubelet's $(VAR) expansion, then the two local remappings."""
    out = []
    for a in c["args"]:
        a = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), a)
        if a.startswith(mount):
            a = results + a[len(mount):]
        if a == listen:
            a = "127.0.0.1:0"
        out.append(a)
    return out


class Pod:
    def __init__(self, c, index=None, secret=secret, where=None):
        env = pod_env(c, index, secret)
        self.args = pod_args(c, env)
        if where:
            self.args = [where + a[len(results):] if a.startswith(results) else a for a in self.args]
        self.p = subprocess.Popen(
            [BIN] + self.args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.out, self.err = [], []
        self.threads = [
            threading.Thread(target=lambda s=s, b=b: b.extend(s), daemon=True)
            for s, b in ((self.p.stdout, self.out), (self.p.stderr, self.err))
        ]
        for t in self.threads:
            t.start()

    def wait(self, timeout=120):
        rc = self.p.wait(timeout=timeout)
        for t in self.threads:
            t.join()
        return rc

    def log(self):
        return "".join(self.out) + "".join(self.err)


rate = float(run["RATE"])
seconds = float(DURATION.rstrip("s"))
print(f"\nsimulation: {shards} shards of the generator Job, {rate:.0f}/s in all for {seconds:.0f} s, start {run['START_AT']}")
pods = [Pod(bc, i) for i in range(shards)]
print("  command of shard 0:", "scimload", " ".join(pods[0].args))

# A live scrape of shard 0 halfway through the schedule.
scraped = None
while time.time() < start + seconds / 2:
    time.sleep(0.2)
url = next((m.group(1) for l in pods[0].err if (m := re.search(r"live metrics at (\S+)", l))), None)
if url:
    scraped = urllib.request.urlopen(url, timeout=5).read().decode()
rcs = [p.wait() for p in pods]
check(all(rc == 0 for rc in rcs), f"every shard exited 0 ({rcs})")
check(
    scraped is not None and 'scimload_requests_total{kind="bench"' in scraped and
    f"scimload_offered_rate{{kind=\"bench\",run_id=\"{run['RUN_ID']}\",shard=\"1/{shards}\"}} {rate / shards:g}" in scraped,
    "a scrape of shard 0 during the run shows its requests and its 1/N offered rate",
)
check(all(target not in p.log() and token not in p.log() for p in pods), "neither target nor token in any shard's log")

firsts = []
for i, p in enumerate(pods):
    m = re.search(r"first intended send (\S+) \(shard (\d+)/(\d+)\)", p.log())
    firsts.append(parse_ns(m.group(1)) if m else None)
check(None not in firsts, "each shard logs its first intended send")
spread_ms = (max(firsts) - min(firsts)) / 1e6 if None not in firsts else float("inf")
check(spread_ms < 5.0, f"first intended sends within 5 ms of each other ({spread_ms:.3f} ms)")
offsets = [((f - start * 10**9) / 1e6) for f in firsts]
print("  first intended sends after START_AT (ms):", ", ".join(f"{o:.3f}" for o in offsets))

merge_pod = Pod(mc)
mrc = merge_pod.wait(timeout=300)
check(mrc == 0, f"the merge Job's command exits 0 (thresholds met): {mrc}")
run_dir = os.path.join(results, run["RUN_ID"])
merged = json.load(open(os.path.join(run_dir, "merged", "summary.json")))
plan = sum(1 for i in range(int(rate * seconds) + 2) if i / rate < seconds)
check(merged["shards"] == shards, f"the merge holds {shards} shards ({merged['shards']})")
check(merged["planned"] == plan, f"merged planned requests = the single-run plan ({merged['planned']} = {plan})")
ach = merged["achieved_rate"]
check(abs(ach - rate) <= 0.02 * rate, f"achieved {ach:.1f}/s within 2% of {rate:.0f}/s")


def log_tags(path):
    tags = {}
    for line in open(path):
        if line.startswith("Tag="):
            tag, start_s, _iv, _max, b64 = line.strip()[4:].split(",")
            tags.setdefault(tag, []).append((float(start_s), b64))
    return tags


summed = {}
from_ms, to_ms = merged["window_ms"]
for i in range(shards):
    d = os.path.join(run_dir, f"shard-{i}")
    for tag, rows in log_tags(os.path.join(d, "intervals.hlog")).items():
        for start_s, b64 in rows:
            h = summed.setdefault(tag, HdrHistogram(1, 60_000_000, 3))
            h.add(HdrHistogram.decode(b64))
exact = True
compared = 0
for op, stats in merged["operations"].items():
    for kind, key in (("response", "response"), ("service", "service"), ("lag", "send_lag")):
        h = summed[f"{op}.{kind}"]
        mine = {
            "count": h.get_total_count(),
            "p50_ms": h.get_value_at_percentile(50) / 1000,
            "p90_ms": h.get_value_at_percentile(90) / 1000,
            "p99_ms": h.get_value_at_percentile(99) / 1000,
            "p999_ms": h.get_value_at_percentile(99.9) / 1000,
            "max_ms": h.get_max_value() / 1000,
        }
        theirs = stats[key]
        for k, v in mine.items():
            compared += 1
            if abs(v - theirs[k]) > 1e-9:
                exact = False
                print(f"    {op}.{kind} {k}: merged {theirs[k]}, from the shards' summed histograms {v}")
check(exact, f"the merge's percentiles equal those of the shards' summed histograms ({compared} values compared)")
p99 = merged["operations"]["get_user"]["response"]["p99_ms"]
print(f"  merged: {merged['planned']} planned, {merged['ok']} ok, {merged['errors']} errors, achieved {ach:.1f}/s, get_user p99 {p99} ms")

# A shard that never finished, and a shard that failed: the merge exits 2 and names it.
print("\nthe merge's gate:")
missing = os.path.join(WORK, "missing")
shutil.copytree(results, missing)
shutil.rmtree(os.path.join(missing, run["RUN_ID"], "shard-1"))
shutil.rmtree(os.path.join(missing, run["RUN_ID"], "merged"))
run["MERGE_WAIT"] = "2s"
m = Pod(mc, where=missing)
rc = m.wait()
check(rc == 2 and "2/3 (JOB_COMPLETION_INDEX=1)" in m.log(), f"a missing shard: exit {rc}, named: {m.log().strip()[-160:]}")
failed = os.path.join(WORK, "failed")
shutil.copytree(missing, failed)
dead = f"http://127.0.0.1:{free_port()}"
run["START_AT"] = rfc3339(int(time.time()) + 3)
f = Pod(bc, 1, secret={"target": dead, "token": token}, where=failed)
frc = f.wait()
check(frc == 2 and dead not in f.log(), f"a shard that cannot reach its target exits 2 without naming it in the log ({frc})")
run["MERGE_WAIT"] = "10m"
t = time.time()
m = Pod(mc, where=failed)
rc = m.wait()
check(
    rc == 2 and "shard 2/3" in m.log() and "failed" in m.log() and time.time() - t < 10,
    f"a failed shard: exit {rc} at once ({time.time() - t:.1f} s of a 10 m wait), named: {m.log().strip()[-160:]}",
)

server.terminate()
server.wait()
if failures:
    print(f"\nk8s-check: {len(failures)} check(s) failed")
    sys.exit(1)
print("\nk8s-check: all checks passed")
