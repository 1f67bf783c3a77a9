#!/usr/bin/env python3
"""Check every case of the corpus against the real `docker compose config`.

Usage: python3 tests/corpus/check.py [case ...]     (from anywhere; needs docker compose v2)

For each case it runs `docker compose config --format json` in the case directory with the
COMPOSE_* variables of the calling shell removed, then checks expected.yaml against it:
services (app, one-shot, inactive, database) exist, inactive ones are really not started,
the version line holds the current value, the app images resolve to it, published ports of the
app services match exactly, and every listed data mount exists with that source and target.
Read-write mounts of app services that expected.yaml does not list are printed as a note
(they are judgement calls, not failures)."""
import json, os, subprocess, sys
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
KEYS = ["resembles", "shape", "compose_files", "app_services", "one_shot", "inactive",
        "version", "moving", "database", "stateful_beside", "data", "ports"]


def compose(case_dir, *args, profiles_all=False):
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    if profiles_all:
        args = ("--profile", "*") + args
    p = subprocess.run(["docker", "compose", *args], cwd=case_dir, env=env,
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(p.stderr.strip())
    return p.stdout


def check(case):
    d = os.path.join(HERE, case)
    errs, notes = [], []
    exp = yaml.safe_load(open(os.path.join(d, "expected.yaml")))
    for k in KEYS:
        if k not in exp:
            errs.append(f"expected.yaml lacks key {k}")
    cfg = json.loads(compose(d, "config", "--format", "json"))
    svcs = cfg.get("services", {})
    try:
        every = set(compose(d, "config", "--services", profiles_all=True).split())
    except RuntimeError:
        every = set(svcs)
    every |= set(svcs)
    for f in exp["compose_files"]:
        if not os.path.exists(os.path.join(d, f)):
            errs.append(f"compose file {f} missing")
    for s in exp["app_services"] + exp["one_shot"] + exp["inactive"]:
        if s not in every:
            errs.append(f"service {s} not in the project")
    for s in exp["inactive"]:
        if s in svcs:
            c = svcs[s]
            rep = c.get("scale", c.get("deploy", {}).get("replicas") if c.get("deploy") else None)
            if rep != 0:
                errs.append(f"inactive {s} is active (scale {rep})")
    for s in exp["app_services"] + exp["one_shot"]:
        if s not in svcs:
            errs.append(f"app/one-shot service {s} not started by compose")
    for lst in ("app_services", "one_shot", "inactive"):
        if exp[lst] != sorted(exp[lst]):
            errs.append(f"{lst} not sorted")
    db = exp["database"]
    if db and db["service"] not in svcs:
        errs.append(f"database service {db['service']} not active")
    # version line (`line: null`: the variable has only a default in a compose file, and hoist
    # adds it to .env, which need not exist yet)
    v = exp["version"]
    if v["line"] is not None:
        vf = os.path.join(d, v["file"])
        lines = open(vf).read().split("\n")
        line = lines[v["line"] - 1] if 0 < v["line"] <= len(lines) else ""
        untagged = v["current"] == "latest" and "image:" in line \
            and ":" not in line.split("image:", 1)[1].split("#")[0].strip().rsplit("/", 1)[-1]
        if str(v["current"]) not in line and not untagged:
            errs.append(f"{v['file']}:{v['line']} {line!r} lacks current {v['current']!r}")
        if v.get("variable") and v["variable"] not in line:
            errs.append(f"{v['file']}:{v['line']} {line!r} lacks variable {v['variable']}")
    for s in exp["app_services"]:
        img = svcs.get(s, {}).get("image", "")
        cur = str(v["current"])
        if v["kind"] != "digest" and cur == "latest" and ":" not in img.rsplit("/", 1)[-1]:
            continue  # untagged image means latest
        if cur not in img:
            notes.append(f"app {s} image {img} does not contain {cur} (another repo/version?)")
    # ports
    got = set()
    for s in exp["app_services"]:
        for p in svcs.get(s, {}).get("ports", []) or []:
            got.add((int(p["published"]) if p.get("published") else None, int(p["target"])))
    want = {(p["published"], p["target"]) for p in exp["ports"]}
    if got != want:
        errs.append(f"ports: compose {sorted(got, key=str)} expected {sorted(want, key=str)}")
    # data
    def norm(kind, src):
        return src if kind == "volume" else os.path.normpath(os.path.join(d, os.path.expanduser(src)))
    seen = set()
    for e in exp["data"]:
        for s in e["services"]:
            ok = False
            for m in svcs.get(s, {}).get("volumes", []) or []:
                if m["type"] == e["kind"] and m.get("source") == norm(e["kind"], e["source"]) \
                        and m["target"] == e["target"]:
                    ok = True
                    seen.add((s, m["target"]))
            if not ok:
                errs.append(f"data {e['kind']} {e['source']}:{e['target']} not on {s}")
    srcs = [e["source"] for e in exp["data"]]
    if srcs != sorted(srcs):
        errs.append("data not sorted by source")
    for s in exp["app_services"]:
        for m in svcs.get(s, {}).get("volumes", []) or []:
            if (s, m["target"]) not in seen and not m.get("read_only") \
                    and "docker.sock" not in str(m.get("source")) and m["type"] in ("bind", "volume"):
                notes.append(f"unlisted rw mount on {s}: {m.get('source')}:{m['target']}")
    return errs, notes


def main():
    cases = sys.argv[1:] or sorted(x for x in os.listdir(HERE)
                                   if os.path.isfile(os.path.join(HERE, x, "expected.yaml")))
    bad = 0
    for c in cases:
        try:
            errs, notes = check(c)
        except Exception as ex:  # noqa
            errs, notes = [f"error: {ex}"], []
        print(("ok   " if not errs else "FAIL ") + c)
        for e in errs:
            print("     - " + e)
        for n in notes:
            print("     . " + n)
        bad += bool(errs)
    print(f"{len(cases)} cases, {bad} failing")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
