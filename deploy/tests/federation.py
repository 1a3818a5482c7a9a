#!/usr/bin/env python3
"""Tests across containers on the compose federation (deploy/compose), driven from the host:
directory writes through a cut-off voter (docker network disconnect) and its catch-up, SIGKILL of
a national node during trace exchange, a rolling restart of every container, and a revoked member
refused by every other container. Every node is driven through its own CLI (`tracenet-node
directory ...` in the admin container) or its gateway's JSON API over the private network.

Run by deploy/tests/run.sh, which brings the federation up and always tears it down. Prints one
`FIGURE name value` line per measured figure (failover, cross-container lookup)."""

import json
import os
import random
import ssl
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

PROJECT = os.environ.get("COMPOSE_PROJECT_NAME", "tracenet-ci")
COMPOSE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "compose")
NETWORK = f"{PROJECT}_federation"

# id -> (service, ip, role, gateway service, gateway ip)
MEMBERS = {}
for line in open(os.path.join(COMPOSE_DIR, "federation.env")).read().split('MEMBERS="')[1].split('"')[0].splitlines():
    f = line.split()
    if not f:
        continue
    gw = f[4] if len(f) > 4 else None
    svc = f[0].lower()
    MEMBERS[f[0]] = dict(svc=svc, ip=f[2], role=f[1], gw_ip=gw,
                         gw_svc=(f[0].split("-")[0].lower() + "-gw") if gw else None)
VOTERS = [m for m in MEMBERS if MEMBERS[m]["role"] != "national"]
NATIONALS = [m for m in MEMBERS if MEMBERS[m]["role"] == "national"]
SEC = next(m for m in MEMBERS if MEMBERS[m]["role"] == "secretariat")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def sh(*args, check=True, timeout=120):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {r.returncode}: {r.stdout}{r.stderr}")
    return r


_ids = {}


def cid(svc):
    if svc not in _ids:
        out = sh("docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={PROJECT}",
                 "--filter", f"label=com.docker.compose.service={svc}").stdout.split()
        if len(out) != 1:
            raise RuntimeError(f"service {svc}: containers {out}")
        _ids[svc] = out[0]
    return _ids[svc]


def node_cli(node, *args, check=True, timeout=30):
    """`tracenet-node ARGS --config /config/NODE/node.toml` in the admin container."""
    return sh("docker", "exec", cid("admin"), "tracenet-node", *args[:2],
              "--config", f"/config/{node}/node.toml", *args[2:], check=check, timeout=timeout)


def directory_show(node):
    r = node_cli(node, "directory", "show", check=False, timeout=15)
    if r.returncode != 0:
        return None
    return dict(l.split(": ", 1) for l in r.stdout.strip().splitlines() if ": " in l)


def wait(what, secs, pred, every=0.5):
    end = time.monotonic() + secs
    last = None
    while time.monotonic() < end:
        try:
            last = pred()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - retried until the deadline
            last = e
        time.sleep(every)
    raise AssertionError(f"timed out after {secs}s waiting for {what} (last: {last})")


_ctx = ssl.create_default_context()
_ctx.check_hostname = False
_ctx.verify_mode = ssl.CERT_NONE  # development console certificate
_tokens = {}


def token(node):
    if node not in _tokens:
        _tokens[node] = sh("docker", "exec", cid(MEMBERS[node]["gw_svc"]), "cat",
                           "/var/lib/tracenet/api-token").stdout.strip()
    return _tokens[node]


def api(node, method, path, body=None, timeout=15):
    """The JSON API of NODE's gateway, over the federation network. Returns (status, json)."""
    url = f"https://{MEMBERS[node]['gw_ip']}:8443/api/v1{path}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Bearer {token(node)}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, context=_ctx, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def healthy(svc):
    return sh("docker", "inspect", "-f", "{{.State.Health.Status}}", cid(svc)).stdout.strip() == "healthy"


def send_trace(frm, to_country, serial):
    s, body = api(frm, "POST", "/traces", {
        "firearm": {"serial_number": serial, "manufacturer": "Synthetic Arms"},
        "requested_country": to_country, "reason": "Synthetic seizure (container test)",
        "legal_basis": "Synthetic basis", "urgency": "URGENCY_ROUTINE"})
    if s == 201:
        return body["request"]["id"]
    raise RuntimeError(f"trace {frm}->{to_country}: {s} {body}")


def incoming_ids(node):
    ids, tok = set(), ""
    while True:
        s, b = api(node, "GET", f"/traces?direction=incoming&page_size=100&page_token={tok}")
        if s != 200:
            raise RuntimeError(f"traces at {node}: {s} {b}")
        ids |= {t["request"]["id"] for t in b["items"]}
        tok = b.get("next_page_token", "")
        if not tok:
            return ids


def create_record(node, ref):
    country = node.split("-")[0]
    s, b = api(node, "POST", "/records", {
        "national_ref": ref,
        "event": {"date": "2025-06-01", "place": {"country": country}, "seizing_agency": "AGENCY_KIND_POLICE"},
        "context": {"seizure_kind": "SEIZURE_KIND_SEIZED"},
        "firearms": [{"serial_number": ref, "manufacturer": "Synthetic Arms",
                      "marking_condition": "MARKING_CONDITION_INTACT"}],
        "notes": "Synthetic record (container test)"})
    if s != 201:
        raise RuntimeError(f"record at {node}: {s} {b}")
    return b["record"]["id"]


def revocations(node):
    v = directory_show(node)
    return int(v["revocations"]) if v else None


def revoke_junk_cert():
    """A directory write whose effect accumulates: the secretariat revokes a random fingerprint
    that belongs to nobody. Returns the number of revocations its replica then holds."""
    fp = "%064x" % random.getrandbits(256)
    node_cli(SEC, "directory", "revoke-cert", fp, "--reason", "container test write", timeout=20)
    return fp


# ---------------------------------------------------------------------------------------------

def test_partition():
    """Cut the leader voter off the network: writes continue (time to the next committed write
    is the failover time), the cut-off voter catches up on reconnect. Three rounds."""
    failovers, elections = [], []
    for rnd in range(3):
        leader = wait("a leader", 30, lambda: (directory_show(SEC) or {}).get("leader", "").strip() or None)
        if leader not in MEMBERS:
            leader = wait("a known leader", 30, lambda: (directory_show("FRA-POL") or {}).get("leader"))
        writer = next(n for n in NATIONALS)  # a learner: its write is forwarded to the leader
        ip = MEMBERS[leader]["ip"]
        marker = f"partition-{rnd}-{random.getrandbits(32):08x}"
        contacts = f'[[contacts]]\nfunction = "{marker}"\norganisation = "Synthetic"\nemail = "x@example.test"\n'
        sh("docker", "exec", cid("admin"), "bash", "-c", f"cat > /tmp/{marker}.toml <<'X'\n{contacts}X")
        log(f"partition round {rnd + 1}: cutting off the leader {leader} ({ip})")
        sh("docker", "network", "disconnect", NETWORK, cid(MEMBERS[leader]["svc"]))
        t0 = time.monotonic()
        # The remaining voters elect a new leader...
        other = next(v for v in VOTERS if v != leader)
        wait("a new leader", 60, lambda: (directory_show(other) or {}).get("leader", leader) not in (leader, "none known"), every=0.05)
        election = time.monotonic() - t0
        elections.append(election)
        # ...and the next directory write commits.
        while True:
            r = node_cli(writer, "directory", "publish-contacts", f"/tmp/{marker}.toml", check=False, timeout=30)
            if r.returncode == 0:
                break
            if time.monotonic() - t0 > 60:
                raise AssertionError(f"no directory write committed 60 s after cutting off {leader}: {r.stderr}")
            time.sleep(0.1)
        failover = time.monotonic() - t0
        failovers.append(failover)
        log(f"  new leader after {election:.2f} s, a write via {writer} committed {failover:.2f} s after the cut")
        # More writes while it is cut off: each national node publishes new contacts.
        markers = {}
        for n in NATIONALS:
            m = f"{marker}-{n}"
            sh("docker", "exec", cid("admin"), "bash", "-c",
               f"cat > /tmp/{m}.toml <<'X'\n[[contacts]]\nfunction = \"{m}\"\norganisation = \"Synthetic\"\nemail = \"x@example.test\"\nX")
            node_cli(n, "directory", "publish-contacts", f"/tmp/{m}.toml", timeout=30)
            markers[n] = m
        log(f"  {len(markers)} more writes committed while {leader} is cut off")
        sh("docker", "network", "connect", "--ip", ip, NETWORK, cid(MEMBERS[leader]["svc"]))
        t1 = time.monotonic()

        def caught_up():
            r = node_cli(leader, "directory", "contacts", check=False, timeout=10)
            return r.returncode == 0 and all(m in r.stdout for m in markers.values())
        wait(f"{leader} to catch up", 60, caught_up, every=0.25)
        log(f"  {leader} reconnected and caught up in {time.monotonic() - t1:.2f} s")
    print(f"FIGURE election_s p50 {statistics.median(elections):.2f} max {max(elections):.2f} n {len(elections)}", flush=True)
    print(f"FIGURE failover_s p50 {statistics.median(failovers):.2f} max {max(failovers):.2f} n {len(failovers)}", flush=True)


def test_sigkill_during_traces():
    """SIGKILL DEU-CUS (receiver) and then FRA-POL (sender, with requests in its outbox) while
    FRA sends trace requests: every acknowledged request arrives, both nodes start again."""
    sent = []
    stop = threading.Event()
    errors = []

    def sender():
        i = 0
        while not stop.is_set():
            try:
                sent.append(send_trace("FRA-POL", "DEU", f"SYN-KILL-{i:04d}"))
            except Exception as e:  # noqa: BLE001 - a refused request was never acknowledged
                errors.append(str(e))
            i += 1
            time.sleep(0.05)

    t = threading.Thread(target=sender)
    t.start()
    time.sleep(2)

    def crash(node):
        svc = MEMBERS[node]["svc"]
        pid = sh("docker", "inspect", "-f", "{{.State.Pid}}", cid(svc)).stdout.strip()
        restarts = sh("docker", "inspect", "-f", "{{.RestartCount}}", cid(svc)).stdout.strip()
        log(f"SIGKILL {node} (pid {pid} on the host) with {len(sent)} trace requests acknowledged")
        # From the host, as a crash: Docker's restart policy then starts it again (docker kill
        # would count as a deliberate stop).
        sh(*([] if os.geteuid() == 0 else ["sudo", "-n"]), "kill", "-KILL", pid)
        return svc, restarts

    svc_deu, r_deu = crash("DEU-CUS")
    time.sleep(3)
    svc_fra, r_fra = crash("FRA-POL")
    time.sleep(2)
    stop.set()
    t.join()
    for svc, before in ((svc_deu, r_deu), (svc_fra, r_fra)):
        wait(f"{svc} restarted by its restart policy", 60,
             lambda: sh("docker", "inspect", "-f", "{{.RestartCount}}", cid(svc)).stdout.strip() != before)
        wait(f"{svc} healthy", 90, lambda: healthy(svc))
    log(f"both nodes restarted; {len(sent)} acknowledged, {len(errors)} refused while a node was down")
    missing = set(sent)
    t0 = time.monotonic()

    def delivered():
        nonlocal missing
        missing = set(sent) - incoming_ids("DEU-CUS")
        return not missing
    wait(f"all acknowledged trace requests at DEU-CUS (missing {len(missing)})", 120, delivered, every=1)
    log(f"all {len(sent)} acknowledged trace requests arrived at DEU-CUS ({time.monotonic() - t0:.1f} s after restart)")
    assert len(sent) > 10, f"too few requests sent: {len(sent)}; errors: {errors[:3]}"
    return sent


def test_rolling_restart(earlier_traces):
    """Restart every container one at a time; between restarts write a record, a trace request
    and a directory entry; nothing acknowledged is lost."""
    order = [MEMBERS[v]["svc"] for v in VOTERS] + [MEMBERS[n]["svc"] for n in NATIONALS] \
        + [MEMBERS[n]["gw_svc"] for n in NATIONALS] + ["admin"]
    records, traces, writes = [], list(earlier_traces), []
    base_revocations = revocations(SEC)

    def acknowledged_writes(step):
        for n in NATIONALS:
            try:
                records.append((n, create_record(n, f"SYN-ROLL-{n[:3]}-{step:02d}")))
            except Exception as e:  # noqa: BLE001 - not acknowledged: nothing to keep
                log(f"  record at {n} not acknowledged: {e}")
        try:
            traces.append(send_trace("FRA-POL", "DEU", f"SYN-ROLL-TR-{step:02d}"))
        except Exception as e:  # noqa: BLE001
            log(f"  trace not acknowledged: {e}")
        for _ in range(20):
            try:
                writes.append(revoke_junk_cert())
                break
            except Exception:  # noqa: BLE001 - e.g. the secretariat itself is restarting
                time.sleep(1)

    for step, svc in enumerate(order):
        acknowledged_writes(step)
        log(f"rolling restart {step + 1}/{len(order)}: {svc}")
        t0 = time.monotonic()
        sh("docker", "restart", "-t", "15", cid(svc), timeout=60)
        if svc != "admin":
            wait(f"{svc} healthy", 90, lambda: healthy(svc))
        log(f"  {svc} back in {time.monotonic() - t0:.1f} s")
    acknowledged_writes(len(order))
    log(f"acknowledged during the rolling restart: {len(records)} records, {len(traces)} traces, {len(writes)} directory writes")

    for node, rid in records:
        s, b = api(node, "GET", f"/records/{rid}")
        assert s == 200, f"record {rid} at {node} lost: {s} {b}"
    for tid in traces:
        s, b = api("FRA-POL", "GET", f"/traces/{tid}")
        assert s == 200, f"trace {tid} lost at FRA-POL: {s} {b}"
    wait("every acknowledged trace at DEU-CUS", 120, lambda: not (set(traces) - incoming_ids("DEU-CUS")), every=1)
    want = base_revocations + len(writes)
    for node in MEMBERS:
        wait(f"{want} revocations on {node}'s replica", 60, lambda: (revocations(node) or 0) >= want)
    log(f"nothing lost: every record, trace request and directory write is there on every replica")


def test_cross_container_lookup():
    """A federated serial lookup from FRA-POL's gateway, answered over mTLS by the other
    containers; figure: p50 / p99 of 200 sequential lookups."""
    serial = "SYNDEU-0003"
    s, b = api("FRA-POL", "POST", "/lookup", {"serial_number": serial, "purpose": "tracing", "legal_basis": "Synthetic basis"})
    assert s == 200, f"{s} {b}"
    holders = [a.get("node_id") for a in b.get("answers", []) if a.get("hits") or a.get("hit")]
    log(f"lookup of {serial} from FRA-POL: answers {json.dumps(b.get('answers'))[:300]} failed {b.get('failed')}")
    # One kept-alive HTTPS connection, as the in-process gateway benchmark's client.
    import http.client
    conn = http.client.HTTPSConnection(MEMBERS["FRA-POL"]["gw_ip"], 8443, context=_ctx, timeout=15)
    body = json.dumps({"serial_number": serial, "purpose": "tracing", "legal_basis": "Synthetic basis"})
    headers = {"Authorization": f"Bearer {token('FRA-POL')}", "Content-Type": "application/json"}
    times = []
    for i in range(220):
        t0 = time.perf_counter()
        conn.request("POST", "/api/v1/lookup", body=body, headers=headers)
        r = conn.getresponse()
        r.read()
        if i >= 20:  # warm-up
            times.append((time.perf_counter() - t0) * 1000)
        assert r.status == 200, r.status
    conn.close()
    times.sort()
    print(f"FIGURE lookup_ms p50 {times[len(times) // 2]:.1f} p99 {times[int(len(times) * 0.99)]:.1f} n {len(times)} peers {len(b.get('answers', [])) + len(b.get('failed', []))}", flush=True)
    return holders


def test_revoked_member_refused():
    """The secretariat revokes ITA-POL: its next calls are refused by every other node, either
    in the answer (the voters: PermissionDenied, revoked) or at the TLS handshake (the refusing
    node logs it)."""
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 1))
    node_cli(SEC, "directory", "revoke", "ITA-POL", "--reason", "container test")
    for n in MEMBERS:
        if n != "ITA-POL":
            wait(f"{n} to see ITA-POL revoked", 30, lambda: "revoked" in node_cli(n, "directory", "members").stdout.split("ITA-POL", 1)[1].split("\n")[0])
    s, b = api("ITA-POL", "POST", "/lookup", {"serial_number": "SYNFRA-0001", "purpose": "tracing", "legal_basis": "Synthetic basis"})
    log(f"lookup from revoked ITA-POL: {s} {json.dumps(b)[:400]}")
    assert s == 200 and not b.get("answers"), f"a node answered revoked ITA-POL: {b}"
    failed = {f["node_id"]: f["reason"] for f in b.get("failed", [])}
    for n in MEMBERS:
        if n == "ITA-POL":
            continue
        if MEMBERS[n]["role"] == "hub":
            # Hubs hold no records, so a lookup never asks them; that they hold ITA-POL revoked
            # was checked above on their own replica (their listeners apply the same roster).
            assert n not in failed, f"hub {n} was asked: {b}"
            continue
        assert n in failed, f"{n} not asked or answered: {b}"
        if "revoked" in failed[n]:
            continue
        logs = sh("docker", "logs", "--since", since, cid(MEMBERS[n]["svc"])).stderr
        assert "ITA-POL is refused: revoked" in logs, f"{n}: {failed[n]}, and its log shows no refusal"
        failed[n] = "TLS handshake refused (revoked), in its log"
    for n, why in sorted(failed.items()):
        log(f"  {n}: {why}")


def main():
    only = sys.argv[1:]
    started = time.monotonic()
    tests = [("partition", test_partition), ("lookup", test_cross_container_lookup)]
    results = {}
    for name, fn in tests:
        if only and name not in only:
            continue
        t0 = time.monotonic()
        log(f"== {name}")
        fn()
        results[name] = time.monotonic() - t0
    sent = []
    if not only or "sigkill" in only:
        t0 = time.monotonic()
        log("== sigkill")
        sent = test_sigkill_during_traces()
        results["sigkill"] = time.monotonic() - t0
    for name, fn in (("rolling", lambda: test_rolling_restart(sent)), ("revoke", test_revoked_member_refused)):
        if only and name not in only:
            continue
        t0 = time.monotonic()
        log(f"== {name}")
        fn()
        results[name] = time.monotonic() - t0
    log("passed: " + ", ".join(f"{k} {v:.0f} s" for k, v in results.items()) + f" (total {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
