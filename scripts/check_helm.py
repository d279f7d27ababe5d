"""Offline checks of a Helm chart (driven by scripts/check-helm)."""
import glob
import os
import subprocess
import sys
import tempfile

import helm_python as helm
import kubernetes_validate
import yaml

chart_dir = sys.argv[1]
tern = os.environ["TERN_BIN"]
CRD_KINDS = {"ServiceMonitor"}
failures = []


def fail(msg):
    failures.append(msg)
    print(f"  FAIL {msg}")


def docs(manifests):
    for path, text in sorted(manifests.items()):
        if not path.endswith(".yaml"):
            continue  # NOTES.txt
        for doc in yaml.safe_load_all(text):
            if doc:
                yield path, doc


chart = helm.Chart.load(chart_dir)
value_files = sorted(glob.glob(os.path.join(chart_dir, "ci", "*.yaml")))
for vf in value_files:
    name = os.path.basename(vf)
    values = yaml.safe_load(open(vf)) or {}
    print(f"== {name}")
    report = helm.lint(chart_dir, values, strict=True)
    for m in report.get("messages", []):
        sev = {1: "INFO", 2: "WARNING", 3: "ERROR"}.get(m.get("severity"), "?")
        print(f"  lint {sev} {m.get('path')}: {m.get('error')}")
        if m.get("severity", 0) >= 2:
            fail(f"{name}: lint {sev}: {m.get('error')}")
    for e in report.get("errors", []):
        fail(f"{name}: lint error: {e}")
    try:
        manifests = chart.render(values, name="tern", namespace="messaging", is_install=True)
    except helm.HelmError as e:
        fail(f"{name}: render: {e}")
        continue
    kinds = []
    for path, doc in docs(manifests):
        kind = doc.get("kind")
        kinds.append(kind)
        if kind in CRD_KINDS:
            print(f"  skip {kind} (CRD, no schema in kubernetes-validate)")
            continue
        try:
            kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)
        except Exception as e:  # ValidationError, SchemaNotFoundError, ...
            fail(f"{name}: {path} {kind}: {e}")
        if kind == "ConfigMap":
            conf = doc["data"]["tern.conf"]
            with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
                f.write(conf)
            # What the StatefulSet puts in the pod's environment.
            env = dict(os.environ, SERVER_NAME="tern-0",
                       CONTROL_ADVERTISE="tern-0.tern-headless:6250",
                       TERN_CONTROL_TOKEN="from-a-secret")
            r = subprocess.run([tern, "config", "check", f.name], env=env,
                               capture_output=True, text=True)
            os.unlink(f.name)
            out = (r.stdout + r.stderr).strip().replace(f.name, "tern.conf")
            print(f"  tern config check: {out}")
            if r.returncode != 0:
                fail(f"{name}: tern config check: {out}")
    print(f"  rendered + validated: {', '.join(sorted(kinds))}")

# Values that must be refused: (values, words expected in the error).
BAD = [
    ({"config": {"cluster": {"replicas": "three"}}}, "replicas"),
    ({"config": {"nats": {"port": 70000}}}, "port"),
    ({"config": {"monitor": {"enabled": "yes"}}}, "enabled"),
    ({"container": {"image": {"pullPolicy": "Sometimes"}}}, "pullPolicy"),
    ({"config": {"lameDuckDuration": 30}}, "lameDuckDuration"),
    ({"replicas": 3}, "replicas"),
    ({"config": {"cluster": {"replicas": 1}}}, "at least 2"),
    ({"config": {"monitor": {"enabled": False}}}, "/healthz"),
    ({"config": {"websocket": {"enabled": True}}}, "websocket"),
    ({"tlsCA": {"enabled": True}}, "tlsCA.configMapName"),
    ({"config": {"nats": {"tls": {"enabled": True}}}}, "config.nats.tls.secretName"),
    ({"config": {"storeDir": {"enabled": False, "pvc": {"enabled": False}}}}, "store_dir"),
    ({"config": {"raft": {"port": "6250"}}}, "port"),
]
print("== values that must fail")
for values, words in BAD:
    try:
        chart.render(values, name="tern", namespace="messaging", is_install=True)
    except helm.HelmError as e:
        msg = str(e)
        if words not in msg:
            fail(f"{values}: failed, but without {words!r}: {msg}")
        else:
            print(f"  ok {values}: {msg.splitlines()[0][:150]}")
        continue
    fail(f"{values}: rendered without error")

if failures:
    print(f"\n{len(failures)} problem(s)")
    sys.exit(1)
print(f"\nhelm chart OK: {len(value_files)} value sets linted, rendered and validated; {len(BAD)} bad value sets refused")
