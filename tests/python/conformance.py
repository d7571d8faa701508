#!/usr/bin/env python3
"""Conformance checks of the xenguard XAPI simulator, driven by the official Python SDK.

Usage: conformance.py MASTER_URL SLAVE_URL [SCENARIO]

SCENARIO is one of:
  protocol  sessions, records, failures and events on a healthy pool (default part 1)
  relogin   the SDK logs in again by itself after the master's xapi restarted (part 2)
  recovery  power_state_reset of a dead slave's guest, the stale VDI tag, restart (part 3)
  all       the three in that order (default)

Only the XenAPI SDK (PyPI `XenAPI`, 26.21.1) talks to the simulator: `XenAPI.Session` and its
`xenapi` dispatcher, plus the Session's own XML-RPC proxy for the few calls that must carry a
session the SDK would not send (a bogus or a stale one). Every check prints `ok <name>`; the first
failure prints `FAIL <name>: <details>` and exits 1. Lines starting with `info ` carry facts for
the driving test; `ready-for-restart` / `ready-for-poweroff` wait for a line `continue` on stdin
while the driver changes the pool (tests/it/sim_conformance.rs).

Bare § numbers cite docs/xapi-notes.md, the XAPI facts the simulator reproduces.
"""

import contextlib
import re
import socket
import sys
import time
import traceback
import urllib.parse
import xmlrpc.client

try:
    import XenAPI
except ImportError as exn:  # the Rust driver checks this first; keep the message clear anyway
    print(f"FAIL import: the XenAPI SDK is not importable by {sys.executable}: {exn}", flush=True)
    sys.exit(1)

USER = "root"
PASSWORD = "xenguard"
ORIGINATOR = "xenguard-conformance"
GUEST_CLASSES = ["host", "host_metrics", "vm", "pool"]
NULL_REF = "OpaqueRef:NULL"
BOGUS_REF = "OpaqueRef:00000000-dead-4bad-8bad-000000000000"
TOKEN_RE = re.compile(r"^\d{20},\d{20}$")
RUNNING_GUESTS = (
    'field "is_a_template"="false" and field "is_control_domain"="false" '
    'and field "power_state"="Running"'
)

# No call may hang the script: a stuck simulator shows up as a FAIL, not as a killed child.
socket.setdefaulttimeout(20.0)


class CheckFailed(Exception):
    """A check found the simulator answering differently from xapi."""


_current = "startup"


@contextlib.contextmanager
def check(name):
    """Runs one named check; prints `ok <name>` when the block completes."""
    global _current
    _current = name
    yield
    print(f"ok {name}", flush=True)


def info(key, value):
    print(f"info {key} {value}", flush=True)


def expect(condition, details):
    if not condition:
        raise CheckFailed(details)


def expect_eq(actual, expected, what):
    if actual != expected:
        raise CheckFailed(f"{what}: expected {expected!r}, got {actual!r}")


def failure_of(call, *args):
    """The ErrorDescription of a call that must raise XenAPI.Failure."""
    try:
        result = call(*args)
    except XenAPI.Failure as f:
        return list(f.details)
    raise CheckFailed(f"expected a XenAPI.Failure, the call returned {result!r}")


def raw_failure(session, method, *params):
    """Calls `method` through the Session's plain XML-RPC proxy with exactly `params` (no
    session prepended, no automatic re-login) and returns the ErrorDescription it must fail with."""
    response = getattr(session, method)(*params)
    expect(isinstance(response, dict), f"{method}: response is not a struct: {response!r}")
    expect_eq(response.get("Status"), "Failure", f"{method}: Status")
    return list(response["ErrorDescription"])


def host_of(url):
    return urllib.parse.urlsplit(url).hostname


def login(url):
    session = XenAPI.Session(url)
    session.login_with_password(USER, PASSWORD, "2.21", ORIGINATOR)
    return session


def wait_for_driver(marker):
    print(marker, flush=True)
    line = sys.stdin.readline()
    expect_eq(line.strip(), "continue", f"driver's answer to {marker}")


# ---------------------------------------------------------------------------------------------
# Part 1: protocol on a healthy pool
# ---------------------------------------------------------------------------------------------


def protocol(master_url, slave_url):
    master_address = host_of(master_url)
    slave_address = host_of(slave_url)

    # §2.1: login_with_password(uname, pwd, version, originator) -> session ref.
    with check("login_with_password"):
        session = XenAPI.Session(master_url)
        session.login_with_password(USER, PASSWORD, "2.21", ORIGINATOR)
        expect(
            isinstance(session.handle, str) and session.handle.startswith("OpaqueRef:"),
            f"session ref {session.handle!r}",
        )
    x = session.xenapi

    # §1.5: the SDK's API_version = pool.get_all()[0] -> pool.get_master ->
    # host.get_API_version_major/minor; ints travel as untyped <value> strings (§1.2, §11.3).
    with check("api_version"):
        expect_eq(session.API_version, "2.21", "API_version")
        master = x.pool.get_master(x.pool.get_all()[0])
        major = x.host.get_API_version_major(master)
        expect_eq(major, "2", "host.get_API_version_major (an int, on the wire as a string)")

    # §2.1 step 2 / §9: SESSION_AUTHENTICATION_FAILED [uname; pam message].
    with check("login_bad_password"):
        details = failure_of(XenAPI.Session(master_url).login_with_password,
                             USER, "not-the-password", "2.21", ORIGINATOR)
        expect_eq(details[:2], ["SESSION_AUTHENTICATION_FAILED", USER], "failure")
        expect_eq(len(details), 3, f"number of params in {details}")

    # §2.1 step 1: a slave answers HOST_IS_SLAVE [master address from pool.conf].
    with check("login_on_slave"):
        details = failure_of(XenAPI.Session(slave_url).login_with_password,
                             USER, PASSWORD, "2.21", ORIGINATOR)
        expect_eq(details, ["HOST_IS_SLAVE", master_address], "failure")

    # §2.4: a pool session presented to a slave -> HOST_IS_SLAVE [master address from the DB].
    with check("slave_rejects_pool_session"):
        slave_proxy = XenAPI.Session(slave_url)
        details = raw_failure(slave_proxy, "pool.get_all", session.handle)
        expect_eq(details, ["HOST_IS_SLAVE", master_address], "failure")

    # §2.3, §10: slave_local_login_with_password works on a slave (Session method, not xenapi).
    with check("slave_local_login_with_password"):
        local = XenAPI.Session(slave_url)
        local.slave_local_login_with_password(USER, PASSWORD)
        expect(local.handle.startswith("OpaqueRef:"), f"local session {local.handle!r}")
        expect_eq(local.last_login_method, "slave_local_login_with_password", "SDK login method")

    # §3.3, §10: a running slave with its master is not in emergency mode.
    with check("is_in_emergency_mode"):
        expect_eq(local.xenapi.host.is_in_emergency_mode(), False, "host.is_in_emergency_mode")

    # §1.5, §2.2: the SDK's logout after a slave_local login sends session.local_logout, which
    # destroys the local session: presenting it again gives SESSION_INVALID [ref].
    with check("local_logout"):
        old = local.handle
        local.xenapi.session.logout()
        expect(local.handle is None, "SDK kept its session after logout")
        details = raw_failure(local, "host.is_in_emergency_mode", old)
        expect_eq(details, ["SESSION_INVALID", old], "the logged-out local session")

    # §2.3: local login checks the password too (no 5 s delay).
    with check("slave_local_login_bad_password"):
        details = failure_of(XenAPI.Session(slave_url).slave_local_login_with_password,
                             USER, "not-the-password")
        expect_eq(details[:2], ["SESSION_AUTHENTICATION_FAILED", USER], "failure")

    # §4.2: host records; every metrics ref resolves; addresses are the endpoints.
    with check("host_get_all_records"):
        hosts = x.host.get_all_records()
        expect_eq(sorted(hosts), sorted(x.host.get_all()), "host refs of get_all_records")
        expect(len(hosts) >= 2, f"{len(hosts)} hosts")
        addresses = {h["address"] for h in hosts.values()}
        expect(master_address in addresses and slave_address in addresses,
               f"host addresses {sorted(addresses)}")
        for ref, h in hosts.items():
            for field in ("uuid", "name_label", "address", "metrics", "control_domain"):
                expect(isinstance(h.get(field), str), f"{ref}: {field} = {h.get(field)!r}")
            expect(isinstance(h.get("enabled"), bool), f"{ref}: enabled = {h.get('enabled')!r}")
            expect_eq(h.get("API_version_major"), "2", f"{ref}: API_version_major")
            expect(isinstance(h.get("resident_VMs"), list), f"{ref}: resident_VMs")

    # §4.2: host_metrics (live bool, memory ints as strings, last_updated a datetime).
    with check("host_metrics_get_all_records"):
        metrics = x.host_metrics.get_all_records()
        expect_eq(sorted(metrics), sorted(h["metrics"] for h in hosts.values()),
                  "host_metrics refs vs host.metrics")
        for ref, m in metrics.items():
            expect_eq(m.get("live"), True, f"{ref}: live")
            expect(isinstance(m.get("memory_total"), str) and m["memory_total"].isdigit(),
                   f"{ref}: memory_total = {m.get('memory_total')!r}")
            expect(isinstance(m.get("last_updated"), xmlrpc.client.DateTime),
                   f"{ref}: last_updated = {m.get('last_updated')!r}")

    # §5.1: VM.get_all_records includes templates and control domains (one per host).
    with check("vm_get_all_records"):
        vms = x.VM.get_all_records()
        expect_eq(sorted(vms), sorted(x.VM.get_all()), "VM refs of get_all_records")
        templates = [r for r, v in vms.items() if v["is_a_template"]]
        dom0s = [r for r, v in vms.items() if v["is_control_domain"]]
        guests = [r for r, v in vms.items()
                  if not v["is_a_template"] and not v["is_control_domain"]]
        expect(templates, "no templates in VM.get_all_records")
        expect_eq(sorted(dom0s), sorted(h["control_domain"] for h in hosts.values()),
                  "control domains vs host.control_domain")
        expect(guests, "no guests")
        for ref, v in vms.items():
            expect(v["power_state"] in ("Halted", "Paused", "Running", "Suspended"),
                   f"{ref}: power_state {v['power_state']!r}")
            expect(isinstance(v["domid"], str), f"{ref}: domid {v['domid']!r} (an int: a string)")
            if v["power_state"] == "Halted":
                expect_eq(v["resident_on"], NULL_REF, f"{ref}: resident_on of a halted VM")
            else:
                expect(v["resident_on"] in hosts, f"{ref}: resident_on {v['resident_on']!r}")
                expect(ref in hosts[v["resident_on"]]["resident_VMs"],
                       f"{ref} missing from resident_VMs of its host")

    # §5.2: get_all_records_where with the running-guests filter = the client-side filter.
    with check("vm_get_all_records_where"):
        running = x.VM.get_all_records_where(RUNNING_GUESTS)
        wanted = sorted(r for r, v in vms.items()
                        if not v["is_a_template"] and not v["is_control_domain"]
                        and v["power_state"] == "Running")
        expect(wanted, "no running guests to filter")
        expect_eq(sorted(running), wanted, "running guests")
        expect_eq(running[wanted[0]]["uuid"], vms[wanted[0]]["uuid"], "filtered record")
        expect_eq(sorted(x.VM.get_all_where(RUNNING_GUESTS)), wanted, "VM.get_all_where")

    # §5.2: a bad expression -> INVALID_VALUE [expr; exception].
    with check("records_where_bad_expression"):
        bad = 'field "power_state" ='
        details = failure_of(x.VM.get_all_records_where, bad)
        expect_eq(details[:2], ["INVALID_VALUE", bad], "failure")

    # §6.5b: pool.get_all -> exactly one pool; pool.get_master -> the master we logged in to.
    with check("pool_get_master"):
        pools = x.pool.get_all()
        expect_eq(len(pools), 1, f"pool.get_all {pools}")
        master = x.pool.get_master(pools[0])
        expect(master in hosts, f"pool.get_master {master!r} is not a host")
        expect_eq(hosts[master]["address"], master_address, "address of pool.get_master")
        record = x.pool.get_record(pools[0])
        expect_eq(record["master"], master, "pool.get_record master")
        expect_eq(record["ha_enabled"], False, "pool.get_record ha_enabled")

    # §9: HANDLE_INVALID [class; ref] with the DB table name as class.
    with check("handle_invalid"):
        expect_eq(failure_of(x.VM.get_record, BOGUS_REF), ["HANDLE_INVALID", "VM", BOGUS_REF],
                  "VM.get_record of a bad ref")
        expect_eq(failure_of(x.host.get_record, BOGUS_REF),
                  ["HANDLE_INVALID", "host", BOGUS_REF], "host.get_record of a bad ref")
        expect_eq(failure_of(x.pool.get_master, BOGUS_REF),
                  ["HANDLE_INVALID", "pool", BOGUS_REF], "pool.get_master of a bad ref")

    # §9: UUID_INVALID [class; uuid].
    with check("uuid_invalid"):
        uuid = "00000000-0000-4000-8000-00000000dead"
        expect_eq(failure_of(x.VM.get_by_uuid, uuid), ["UUID_INVALID", "VM", uuid], "failure")

    # §1.2 / §9: MESSAGE_PARAMETER_COUNT_MISMATCH [method; expected; received], counts
    # excluding the session.
    with check("parameter_count_mismatch"):
        expect_eq(failure_of(x.VM.get_record),
                  ["MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.get_record", "1", "0"], "no params")
        expect_eq(failure_of(x.VM.get_record, guests[0], "extra"),
                  ["MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.get_record", "1", "2"], "two params")

    # §1.2 / §9: MESSAGE_METHOD_UNKNOWN [method].
    with check("method_unknown"):
        expect_eq(failure_of(x.VM.frobnicate, guests[0]),
                  ["MESSAGE_METHOD_UNKNOWN", "VM.frobnicate"], "failure")

    # §2.4: an unknown session -> SESSION_INVALID [ref]; for an unknown method with params the
    # session check comes first (§1.2).
    with check("session_invalid"):
        expect_eq(raw_failure(session, "VM.get_all", BOGUS_REF), ["SESSION_INVALID", BOGUS_REF],
                  "VM.get_all with a bogus session")
        expect_eq(raw_failure(session, "VM.frobnicate", BOGUS_REF),
                  ["SESSION_INVALID", BOGUS_REF], "unknown method with a bogus session")

    # §7.1: event.from (Python spelling event_from, §1.2 `<class>_<message>`) from token ""
    # returns every current object once, operation add.
    with check("event_from_initial"):
        batch = x.event_from(GUEST_CLASSES, "", 30.0)
        expect_eq(sorted(batch), ["events", "token", "valid_ref_counts"], "members")
        events = batch["events"]
        seen = {}
        for e in events:
            key = (e["class"], e["ref"])
            expect(key not in seen, f"object reported twice: {key}")
            seen[key] = e
            expect_eq(e["operation"], "add", f"operation of {key}")
            expect(isinstance(e["id"], str) and e["id"].isdigit(), f"id {e['id']!r}")
            expect_eq(e["timestamp"], "0.0", "timestamp")
            expect("snapshot" in e, f"no snapshot for {key}")
        current = {
            "host": x.host.get_all(),
            "host_metrics": x.host_metrics.get_all(),
            "vm": x.VM.get_all(),
            "pool": x.pool.get_all(),
        }
        for cls, refs in current.items():
            got = sorted(r for c, r in seen if c == cls)
            expect_eq(got, sorted(refs), f"refs of class {cls} in the events")
        for (cls, ref), e in seen.items():
            if cls == "vm":
                expect_eq(e["snapshot"]["uuid"], vms[ref]["uuid"], f"snapshot of {ref}")
        expect(TOKEN_RE.match(batch["token"]), f"token {batch['token']!r}")
        info("event-count", len(events))

    # §7.1, §7.2 step 3: valid_ref_counts (Int32, every table) match the get_all counts.
    with check("valid_ref_counts"):
        counts = batch["valid_ref_counts"]
        for cls in ("pool", "host", "host_metrics", "vm", "vbd", "vdi", "sr", "pbd"):
            expect(type(counts.get(cls)) is int, f"valid_ref_counts[{cls!r}] = {counts.get(cls)!r}")
        expect_eq(counts["host"], len(current["host"]), "host count")
        expect_eq(counts["host_metrics"], len(current["host_metrics"]), "host_metrics count")
        expect_eq(counts["vm"], len(current["vm"]), "vm count")
        expect_eq(counts["pool"], 1, "pool count")
        expect_eq(counts["vbd"], len(x.VBD.get_all()), "vbd count")
        expect_eq(counts["vdi"], len(x.VDI.get_all()), "vdi count")
        expect_eq(counts["sr"], len(x.SR.get_all()), "sr count")
        expect_eq(counts["pbd"], len(x.PBD.get_all()), "pbd count")

    # §7.1: nothing changed since the token: the call blocks for the timeout, returns no events.
    with check("event_from_timeout"):
        started = time.monotonic()
        again = x.event_from(GUEST_CLASSES, batch["token"], 1.0)
        elapsed = time.monotonic() - started
        expect_eq(again["events"], [], "events after the token")
        expect(elapsed >= 0.9, f"returned after {elapsed:.2f} s, before the 1.0 s timeout")
        expect(TOKEN_RE.match(again["token"]) and again["token"] >= batch["token"],
               f"token {again['token']!r} after {batch['token']!r}")

    # §7.1: class names are lower-cased ("VM" = "vm").
    with check("event_from_class_case"):
        upper = x.event_from(["VM"], "", 30.0)
        expect_eq(sorted(e["ref"] for e in upper["events"]), sorted(current["vm"]), "VM refs")

    # §7.1 / §9: EVENT_FROM_TOKEN_PARSE_FAILURE [token].
    with check("event_from_bad_token"):
        expect_eq(failure_of(x.event_from, GUEST_CLASSES, "not-a-token", 1.0),
                  ["EVENT_FROM_TOKEN_PARSE_FAILURE", "not-a-token"], "failure")

    # §2.2: logout destroys the session.
    with check("logout"):
        old = session.handle
        session.xenapi.session.logout()
        expect_eq(raw_failure(session, "VM.get_all", old), ["SESSION_INVALID", old],
                  "the logged-out session")


# ---------------------------------------------------------------------------------------------
# Part 2: SESSION_INVALID after a master restart -> the SDK logs in again
# ---------------------------------------------------------------------------------------------


def relogin(master_url, slave_url):
    with check("relogin_login"):
        session = login(master_url)
        before = session.handle
        vms_before = sorted(session.xenapi.VM.get_all())

    # The driver kills and restarts the master's xapi here. §2.4: sessions are not persisted.
    wait_for_driver("ready-for-restart")

    # §1.5: the SDK sees SESSION_INVALID, logs in again with the last method and retries.
    with check("relogin_after_restart"):
        vms_after = sorted(session.xenapi.VM.get_all())
        expect_eq(vms_after, vms_before, "VM.get_all after the restart")
        expect(session.handle != before, "the SDK kept its old session: no re-login happened")
        expect_eq(session.last_login_method, "login_with_password", "SDK login method")
        expect_eq(raw_failure(session, "VM.get_all", before), ["SESSION_INVALID", before],
                  "the pre-restart session")
        expect_eq(session.API_version, "2.21", "API_version after re-login")
        session.xenapi.session.logout()


# ---------------------------------------------------------------------------------------------
# Part 3: a dead slave's guest: power_state_reset, the stale VDI tag, restart elsewhere
# ---------------------------------------------------------------------------------------------


def recovery(master_url, slave_url):
    slave_address = host_of(slave_url)
    with check("recovery_setup"):
        session = login(master_url)
        x = session.xenapi
        hosts = x.host.get_all_records()
        slave = next((r for r, h in hosts.items() if h["address"] == slave_address), None)
        expect(slave is not None, f"no host with address {slave_address}")
        vms = x.VM.get_all_records()
        vm = vdi = None
        for ref, v in sorted(vms.items(), key=lambda kv: kv[1]["name_label"]):
            if (v["is_a_template"] or v["is_control_domain"] or v["resident_on"] != slave
                    or v["power_state"] != "Running"):
                continue
            disks = [x.VBD.get_VDI(b) for b in v["VBDs"] if not x.VBD.get_empty(b)]
            if disks:
                vm, vdi = ref, disks[0]
                break
        expect(vm is not None, f"no running guest with a disk on the slave {slave}")
        tag = f"host_{slave}"
        info("recovery-vm", vms[vm]["uuid"])
        info("slave-uuid", hosts[slave]["uuid"])

    # §5.1, §6.6: blktap tags the attached VDI with host_<host ref> = RW.
    with check("vdi_attach_tag"):
        expect_eq(x.VDI.get_sm_config(vdi).get(tag), "RW", f"sm_config[{tag!r}]")

    # §5.3 step 1.
    with check("power_state_reset_control_domain"):
        dom0 = hosts[slave]["control_domain"]
        expect_eq(failure_of(x.VM.power_state_reset, dom0),
                  ["CANNOT_RESET_CONTROL_DOMAIN", dom0], "failure")

    # §5.3 step 2: resident on a live, answering host -> HOST_IS_LIVE [resident_on].
    with check("power_state_reset_live_host"):
        expect_eq(failure_of(x.VM.power_state_reset, vm), ["HOST_IS_LIVE", slave], "failure")
        expect_eq(x.VM.get_power_state(vm), "Running", "power_state after the refusal")

    # §5.4: VM_BAD_POWER_STATE [vm; expected; actual], lower-case.
    with check("start_running_vm"):
        expect_eq(failure_of(x.VM.start, vm, False, False),
                  ["VM_BAD_POWER_STATE", vm, "halted", "running"], "failure")

    token = x.event_from(["vm"], "", 30.0)["token"]

    # The driver cuts the slave's power and moves the clock 601 s.
    wait_for_driver("ready-for-poweroff")

    # §4.1: live=false 600 s after the last heartbeat; the VM record is not touched; the host
    # stays enabled.
    with check("slave_not_live"):
        metrics = x.host.get_metrics(slave)
        expect_eq(x.host_metrics.get_live(metrics), False, "host_metrics.live of the dead slave")
        expect_eq(x.host.get_enabled(slave), True, "host.enabled of the dead slave")
        record = x.VM.get_record(vm)
        expect_eq((record["power_state"], record["resident_on"]), ("Running", slave),
                  "the dead slave's guest before the reset")

    # §5.3: power_state_reset -> void; Halted, resident_on NULL, domid -1; VDI tag stays.
    with check("power_state_reset"):
        expect_eq(x.VM.power_state_reset(vm), "", "result")
        record = x.VM.get_record(vm)
        expect_eq(record["power_state"], "Halted", "power_state")
        expect_eq(record["resident_on"], NULL_REF, "resident_on")
        expect_eq(record["domid"], "-1", "domid")
        expect(vm not in x.host.get_resident_VMs(slave), "still in the slave's resident_VMs")
        expect_eq(x.VDI.get_sm_config(vdi).get(tag), "RW",
                  "the VDI tag after power_state_reset (§5.3 step 5)")

    # §7.2 step 5: power changes arrive as vm mod events.
    with check("power_state_reset_event"):
        events = x.event_from(["vm"], token, 5.0)["events"]
        mine = [e for e in events if e["ref"] == vm]
        expect_eq([e["operation"] for e in mine], ["mod"], f"events of {vm}")
        expect_eq(mine[0]["snapshot"]["power_state"], "Halted", "snapshot power_state")

    # §5.4 storage, §6.6, §9: the dead host's RW tag -> SR_BACKEND_FAILURE_46
    # ["", "The VDI is not available [opterr=...]", ""].
    with check("start_sr_backend_failure_46"):
        details = failure_of(x.VM.start, vm, False, False)
        expect_eq(details[0], "SR_BACKEND_FAILURE_46", f"failure {details}")
        expect_eq(len(details), 4, f"number of params in {details}")
        expect_eq((details[1], details[3]), ("", ""), f"params 1 and 3 of {details}")
        expect(details[2].startswith("The VDI is not available [opterr="), f"reason {details[2]!r}")
        expect_eq(x.VM.get_power_state(vm), "Halted", "power_state after the failed start")

    # §10: the client clears the dead host's tag itself, as resetvdis' reset_sr does.
    with check("remove_from_sm_config"):
        expect_eq(x.VDI.remove_from_sm_config(vdi, tag), "", "result")
        expect(tag not in x.VDI.get_sm_config(vdi), "the tag is still there")

    # §5.4: the start now succeeds on a live host, which tags the VDI in turn.
    with check("start_after_tag_removed"):
        expect_eq(x.VM.start(vm, False, False), "", "result")
        record = x.VM.get_record(vm)
        expect_eq(record["power_state"], "Running", "power_state")
        target = record["resident_on"]
        expect(target in hosts and target != slave, f"resident_on {target!r}")
        expect_eq(x.host_metrics.get_live(x.host.get_metrics(target)), True, "target live")
        expect_eq(x.VDI.get_sm_config(vdi).get(f"host_{target}"), "RW", "new tag")
        info("recovery-host", hosts[target]["uuid"])
        session.xenapi.session.logout()


SCENARIOS = {
    "protocol": [protocol],
    "relogin": [relogin],
    "recovery": [recovery],
    "all": [protocol, relogin, recovery],
}


def main(argv):
    if len(argv) not in (3, 4) or (len(argv) == 4 and argv[3] not in SCENARIOS):
        print(f"usage: {argv[0]} MASTER_URL SLAVE_URL [{'|'.join(SCENARIOS)}]", file=sys.stderr)
        return 2
    master_url, slave_url = argv[1], argv[2]
    scenario = argv[3] if len(argv) == 4 else "all"
    version = getattr(XenAPI, "__version__", None)
    if version is None:
        try:
            from importlib.metadata import version as dist_version

            version = dist_version("XenAPI")
        except Exception:  # noqa: BLE001 - informational only
            version = "unknown"
    info("sdk", f"XenAPI {version} ({XenAPI.__file__})")
    try:
        for part in SCENARIOS[scenario]:
            part(master_url, slave_url)
    except CheckFailed as exn:
        print(f"FAIL {_current}: {exn}", flush=True)
        return 1
    except XenAPI.Failure as exn:
        print(f"FAIL {_current}: unexpected XenAPI.Failure {exn.details}", flush=True)
        traceback.print_exc()
        return 1
    except Exception as exn:  # noqa: BLE001 - every other error is a failed check too
        print(f"FAIL {_current}: {type(exn).__name__}: {exn}", flush=True)
        traceback.print_exc()
        return 1
    print(f"done {scenario}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
