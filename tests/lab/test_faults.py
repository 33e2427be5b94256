# SPDX-License-Identifier: MIT
"""Fault injection (issue 9): the client under test against the real
OpenVPN 2.6 server in the lab (tests/lab/lab.py) while the path misbehaves.
Every client case runs for each client in $LAB_CLIENTS (meson: shimmerd and,
as the reference, OpenVPN's own client); the service cases run shimmerd as
the D-Bus service on a private bus (tests/lab/daemonenv.py).

  loss, reordering and duplication (a seeded relay, tests/lab/impair.py)
      during handshakes and during a bulk TCP transfer;
  the client's link down for 20 s, then up;
  the server frozen (SIGSTOP 15 s), and the server killed and restarted
      (UDP; TCP at once and after 3 s of refused connections);
  an MTU black hole (nftables: UDP datagrams over 1200 bytes vanish);
  shimmerd (the service) killed with SIGKILL during a session, restarted;
  200 connect/disconnect cycles through the service.

This kernel has no netem: whole-path faults are nftables rules inside the
lab's namespaces, per-datagram ones the relay. The profiles use short
timers (keepalive 2 6 from the server, connect-retry 1 2, hand-window 8) so
that reconnects are quick.

    sudo LAB_CLIENTS=shimmerd,openvpn SHIMMERD=_build/dev/service/shimmerd \\
        /usr/bin/python3 -m pytest -v tests/lab/test_faults.py

$FAULT_SEED fixes the relay's seed (printed by each case); $FAULT_CYCLES the
number of service cycles (200); $FAULT_REPORT, a file, gets one JSON line
per case with its figures. Needs root and nftables; skips otherwise.
"""
import hashlib
import ipaddress
import json
import os
import re
import signal
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import daemonenv  # noqa: E402
import impair  # noqa: E402
import lab as labmod  # noqa: E402

SEED = int(os.environ.get("FAULT_SEED", "4"))
CYCLES = int(os.environ.get("FAULT_CYCLES", "200"))
PUSHED_ROUTE = "10.99.0.0/16"
KEEPALIVE = (2, 6)   # the server pushes ping 2, ping-restart 6
QUICK = ["connect-retry 1 2", "hand-window 8", "server-poll-timeout 4"]


def _skip_reason():
    reason = labmod.preflight()
    if reason:
        return reason
    if not impair.nft_available():
        return "nft is not installed (Debian's nftables)"
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")


def report(case, client, **figures):
    """Prints the case's figures and appends them to $FAULT_REPORT."""
    line = dict(case=case, client=client, **figures)
    print("FAULT %s" % json.dumps(line))
    path = os.environ.get("FAULT_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(line) + "\n")


def fault_server(lab, **options):
    opts = {"keepalive": KEEPALIVE, "wrap": "tls-crypt", "push_routes": [PUSHED_ROUTE]}
    opts.update(options)
    return lab.start_openvpn_server(opts)


def client_profile(lab, extra=(), quick=QUICK, **options):
    return lab.client_config(dict({"extra": list(quick) + list(extra)}, **options))


def tun_names(lab):
    out = lab.run_in_client(["ip", "-o", "link", "show", "type", "tun"], check=False).stdout
    return sorted(re.findall(r"^\d+: ([^:@]+)", out, re.M))


def routes(lab):
    """The client namespace's routes, both families, main table, without the
    kernel's link-local ones (a link that goes down and up gets them anew)."""
    out = ""
    for fam in ("-4", "-6"):
        out += lab.run_in_client(["ip", fam, "route", "show"], check=False).stdout
    return sorted(line.strip() for line in out.splitlines()
                  if line.strip() and not line.startswith("fe80::"))


def snapshot(lab, cli):
    return {"tuns": tun_names(lab), "routes": routes(lab), "fds": cli.fd_count()}


def assert_nothing_leaked(lab, cli, before, what):
    after = snapshot(lab, cli)
    assert after["tuns"] == before["tuns"], "%s: tun devices %s, before %s" % (
        what, after["tuns"], before["tuns"])
    assert len(after["routes"]) == len(set(after["routes"])), "%s: duplicate routes %s" % (
        what, after["routes"])
    assert after["routes"] == before["routes"], "%s: routes changed:\n-%s\n+%s" % (
        what, sorted(set(before["routes"]) - set(after["routes"])),
        sorted(set(after["routes"]) - set(before["routes"])))
    assert after["fds"] == before["fds"], "%s: %s holds %s file descriptors, before %s" % (
        what, cli.client_cmd.name, after["fds"], before["fds"])


def tunnel_pings(lab, srv, count=3):
    return lab.ping_from_client(srv.tunnel_v4, count=count, interval=0.1, timeout=4)


def wait_tunnel_back(lab, cli, srv, mark, timeout):
    """Waits for the client's ready line after MARK and a ping through the
    tunnel; returns the seconds it took."""
    t0 = time.monotonic()
    cli.wait_log(cli.client_cmd.ready, timeout, since=mark)
    labmod.wait_for(lambda: tunnel_pings(lab, srv, count=1).ok,
                    max(1.0, timeout - (time.monotonic() - t0)),
                    what="a ping through the tunnel")
    return time.monotonic() - t0


def transfer(lab, host, nbytes, seed, timeout, port=5201, to="server"):
    """NBYTES over one TCP connection to HOST (a sink in the TO namespace),
    checked end to end with SHA-256; returns (sent, received)."""
    sink, out = impair.start_sink(lab, host, port=port, side=to, timeout=timeout)
    try:
        sent = impair.run_source(lab, host, port, nbytes, seed, timeout,
                                 side="client" if to == "server" else "server")
        got = impair.read_sink(out, 10)
    finally:
        sink.stop()
    assert got["bytes"] == nbytes and got["sha256"] == sent["sha256"], (sent, got)
    assert sent["sha256"] == hashlib.sha256(impair.pattern(seed, nbytes)).hexdigest()
    return sent, got


# ------------------------------------------------------------------ client cases

def test_loss_reorder_duplication(lab, client_cmd):
    """5% loss, 5% reordering, 1% duplication, each direction: handshakes
    finish within 10 s, and 4 MiB cross the tunnel intact over TCP."""
    # Pings every 10 s only: the flows of the clients stopped below get few,
    # and the relay's counts are the handshakes'.
    srv = fault_server(lab, keepalive=(10, 60))
    relay = impair.start_relay(lab, srv, seed=SEED, loss=5, reorder=5, dup=1)
    # The default hand-window: a handshake that loses a packet twice
    # needs its third try (2 + 4 s later), and a short hand-window would
    # restart it just before (seen with hand-window 8 and FAULT_SEED=1).
    prof = client_profile(lab, quick=["connect-retry 1 2"], port=relay.port)
    # Handshakes until the impairments have hit a few (the relay's fate of a
    # datagram depends on the seed and its index only), at most 8.
    times = []
    for attempt in range(8):
        cli = lab.start_client(prof, client_cmd, timeout=10)
        times.append(round(cli.connect_time, 2))
        time.sleep(0.2)
        hit = relay.stats()
        if attempt < 7:
            cli.stop()
        lost = hit["up"]["lost"] + hit["down"]["lost"]
        if attempt >= 1 and lost >= 3 and hit["up"]["reordered"] + hit["down"]["reordered"]:
            break
    print("seed %d: handshakes %s s; relay %s" % (SEED, times, hit))
    assert max(times) <= 10.0, times
    assert hit["up"]["lost"] + hit["down"]["lost"], "the handshakes met no loss: %s" % hit
    if not cli.alive():
        cli = lab.start_client(prof, client_cmd, timeout=10)
    at_bulk = relay.stats()
    t0 = time.monotonic()
    sent, got = transfer(lab, srv.tunnel_v4, 4 << 20, SEED, timeout=90)
    bulk_s = time.monotonic() - t0
    assert ipaddress.ip_address(got["peer"]) in ipaddress.ip_network(srv.tunnel_net4), got
    end = relay.stats()
    during = {d: {k: end[d][k] - at_bulk[d][k] for k in end[d]} for d in ("up", "down")}
    print("bulk: %.1f s; relay during it: %s" % (bulk_s, during))
    for d in ("up", "down"):
        assert during[d]["lost"] > 0 and during[d]["reordered"] > 0, during
    assert during["up"]["duplicated"] + during["down"]["duplicated"] > 0, during
    assert cli.alive(), cli.log_tail()
    report("loss-reorder-dup", client_cmd.name, seed=SEED, handshakes_s=times,
           relay_during_handshakes={d: {k: hit[d][k] for k in ("in", "lost", "reordered",
                                                              "duplicated")}
                                    for d in ("up", "down")},
           bulk_s=round(bulk_s, 2), bulk_bytes=4 << 20, relay_during_bulk=during)


def test_link_down_then_up(lab, client_cmd):
    """The client's link goes down for 20 s (its addresses kept, as for a
    cable pulled) and comes back: the client reconnects by itself, with
    one tun device, the same routes and the same number of fds."""
    srv = fault_server(lab)
    cli = lab.start_client(client_profile(lab), client_cmd, timeout=15)
    assert tunnel_pings(lab, srv).ok
    lab.run_in_client("sysctl -qw net.ipv6.conf.lab-cli.keep_addr_on_down=1")
    before = snapshot(lab, cli)
    mark = cli.mark()
    lab.run_in_client("ip link set lab-cli down")
    time.sleep(20)
    assert not tunnel_pings(lab, srv, count=1).ok, "the tunnel worked with the link down"
    lab.run_in_client("ip link set lab-cli up")
    # A link that goes down loses its IPv4 routes: put the lab's back.
    lab.run_in_client(["ip", "route", "replace", "default", "via", lab.server_ip4])
    lab.run_in_client(["ip", "-6", "route", "replace", "default", "via", lab.server_ip6])
    back = wait_tunnel_back(lab, cli, srv, mark, timeout=30)
    time.sleep(1)   # let a late second attempt show itself
    assert_nothing_leaked(lab, cli, before, "after the link came back")
    assert cli.alive(), cli.log_tail()
    report("link-down-20s", client_cmd.name, back_after_up_s=round(back, 2),
           fds=before["fds"], tuns=before["tuns"])


def test_server_frozen_then_killed(lab, client_cmd):
    """The server stops (SIGSTOP) for 15 s and continues; later it is
    killed (SIGKILL) and started again. Each time the tunnel comes back
    without a hand on the client, and nothing is left twice."""
    srv = fault_server(lab)
    cli = lab.start_client(client_profile(lab), client_cmd, timeout=15)
    assert tunnel_pings(lab, srv).ok
    before = snapshot(lab, cli)

    mark = cli.mark()
    srv.signal(signal.SIGSTOP)
    try:
        time.sleep(15)
        assert not tunnel_pings(lab, srv, count=1).ok, "a frozen server answered"
    finally:
        srv.signal(signal.SIGCONT)
    thawed = wait_tunnel_back(lab, cli, srv, mark, timeout=30)
    assert_nothing_leaked(lab, cli, before, "after the server was frozen")

    mark = cli.mark()
    srv.signal(signal.SIGKILL)
    srv.wait_exit(5)
    srv.restart()
    restarted = wait_tunnel_back(lab, cli, srv, mark, timeout=30)
    time.sleep(1)
    assert_nothing_leaked(lab, cli, before, "after the server restarted")
    assert cli.alive(), cli.log_tail()
    report("server-frozen-15s", client_cmd.name, back_after_sigcont_s=round(thawed, 2))
    report("server-killed-restarted", client_cmd.name, back_after_restart_s=round(restarted, 2))


def test_tcp_server_killed_and_restarted(lab, client_cmd):
    """Over TCP the server's death is a reset connection, and the restarted
    server refuses connections until it listens: the client keeps trying
    and the tunnel comes back, one tun device, the same routes and fds."""
    srv = fault_server(lab, proto="tcp")
    cli = lab.start_client(client_profile(lab), client_cmd, timeout=15)
    assert tunnel_pings(lab, srv).ok
    before = snapshot(lab, cli)
    for round_ in range(2):
        mark = cli.mark()
        srv.signal(signal.SIGKILL)
        srv.wait_exit(5)
        if round_ == 1:
            time.sleep(3)   # refused for a while: nothing listens
        srv.restart()
        back = wait_tunnel_back(lab, cli, srv, mark, timeout=30)
        time.sleep(1)
        assert_nothing_leaked(lab, cli, before, "after restart %d of the TCP server" % round_)
        report("tcp-server-killed-restarted" + ("-after-3s" if round_ else ""),
               client_cmd.name, back_after_restart_s=round(back, 2))
    assert cli.alive(), cli.log_tail()


def test_mtu_black_hole(lab, client_cmd):
    """UDP datagrams over 1200 bytes vanish on the path (no ICMP): small
    packets keep flowing, large pings are lost, and TCP works both ways
    because the profile's mssfix keeps its segments under the hole."""
    srv = fault_server(lab)
    cli = lab.start_client(client_profile(lab, ["mssfix 1200 mtu"]), client_cmd, timeout=15)
    for ns in (lab.cli_ns, lab.srv_ns):
        impair.Nft(lab, ns).drop_udp_over(1200)
    small = lab.ping_from_client(srv.tunnel_v4, count=5, interval=0.1)
    assert small.ok and small.received == 5, small.output
    big = lab.ping_from_client(srv.tunnel_v4, count=2, size=1300, interval=0.2, timeout=3)
    assert not big.ok, "a 1300-byte ping crossed the black hole: the rule does not work"
    up, got_up = transfer(lab, srv.tunnel_v4, 1 << 20, SEED, timeout=20)
    client_addr = got_up["peer"]
    down, got_down = transfer(lab, client_addr, 1 << 20, SEED + 1, timeout=20, port=5202,
                              to="client")
    # The segments' size the far end uses: what the clamped SYN allowed.
    assert got_up["mss"] <= 1200 - 28 - 40, got_up
    assert cli.alive(), cli.log_tail()
    report("mtu-black-hole-1200", client_cmd.name, mss_seen_by_server=got_up["mss"],
           mss_seen_by_client=got_down["mss"], up_s=round(up["seconds"], 2),
           down_s=round(down["seconds"], 2))


def _shimmerd_or_skip():
    cmd = labmod.shimmerd_command()
    if cmd is None:
        pytest.skip("shimmerd not built (set $SHIMMERD)")
    return cmd


def _mss_with(lab, srv, client, line, port):
    cli = lab.start_client(client_profile(lab, [line]), client, timeout=15)
    try:
        _, got = transfer(lab, srv.tunnel_v4, 64 << 10, SEED, timeout=20, port=port)
        return got["mss"]
    finally:
        cli.stop()


def test_mssfix_forms_clamp_like_openvpn(lab):
    """The three forms of mssfix give the MSS OpenVPN 2.6 gives."""
    shimmerd = _shimmerd_or_skip()
    srv = fault_server(lab)
    seen = {}
    port = 5300
    for line in ("mssfix 1200 mtu", "mssfix 1200", "mssfix 1200 fixed"):
        for client in (labmod.OPENVPN, shimmerd):
            port += 1
            seen[(line, client.name)] = _mss_with(lab, srv, client, line, port)
    print("MSS the server saw: %s" % seen)
    for line in ("mssfix 1200 mtu", "mssfix 1200", "mssfix 1200 fixed"):
        assert seen[(line, "shimmerd")] == seen[(line, "openvpn")], (line, seen)


# ------------------------------------------------------------------ service cases

DNS_SERVER = "10.99.0.53"


def service_env(lab, shimmerd, env=None):
    reason = daemonenv.skip_reason(shimmerd.argv[0])
    if reason:
        pytest.skip(reason)
    return daemonenv.ServiceEnv(lab, shimmerd.argv[0], resolvconf=True, env=env)


def state_files(directory):
    out = {}
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), "rb") as f:
            out[name] = hashlib.sha256(f.read()).hexdigest()
    return out


def test_service_killed_during_a_session(lab):
    """shimmerd, the D-Bus service, is SIGKILLed with a session up (routes
    pinned outside the tunnel, DNS through resolvconf): after a restart no
    tun device, no route of its protocol (115) and no resolvconf record is
    left, the profiles are as they were, and a new session works and
    cleans up after itself."""
    shimmerd = _shimmerd_or_skip()
    fault_server(lab, redirect_gateway=True,
                 extra=['push "dhcp-option DNS %s"' % DNS_SERVER,
                        'push "dhcp-option DOMAIN corp.shimmer.test"'])
    with service_env(lab, shimmerd) as env:
        env.start_daemon()
        baseline = routes(lab)
        text = lab.client_config({"inline": True, "extra": QUICK})
        victim = env.import_profile("victim", text)
        other = env.import_profile("bystander", text)
        profiles = {p: (env.prop(p, daemonenv.P1, "Name"), env.prop(p, daemonenv.P1, "Id"))
                    for p in (victim, other)}
        stored = state_files(env.state_dir)
        session = env.connect(victim)
        env.wait_state(session, "connected")
        tun = env.prop(session, daemonenv.S1, "Interface")
        # DNS is applied off the main loop: the record may follow the state
        # by a moment.
        labmod.wait_for(lambda: env.resolvconf_records(), 5, what="the resolvconf record")
        up = {"tuns": env.tun_links(), "proto115": env.shimmerd_routes(),
              "records": env.resolvconf_records()}
        assert tun in up["tuns"] and up["proto115"] and up["records"] == [tun + ".shimmer"], up
        with open(os.path.join(env.records_dir, tun + ".shimmer")) as f:
            assert "nameserver %s" % DNS_SERVER in f.read()

        t0 = time.monotonic()
        env.kill_daemon(signal.SIGKILL)
        stale = {"tuns": env.tun_links(), "proto115": env.shimmerd_routes(),
                 "records": env.resolvconf_records()}
        print("left by the killed shimmerd: %s" % stale)
        env.start_daemon()
        labmod.wait_for(lambda: not env.shimmerd_routes() and not env.resolvconf_records()
                        and not env.tun_links(), 15,
                        what="the stale state to be cleaned (%s)" % stale)
        cleaned = time.monotonic() - t0
        assert routes(lab) == baseline, (routes(lab), baseline)
        assert sorted(env.list_profiles()) == sorted(profiles)
        for p, (name, pid) in profiles.items():
            assert env.prop(p, daemonenv.P1, "Name") == name
            assert env.prop(p, daemonenv.P1, "Id") == pid
            assert env.prop(p, daemonenv.P1, "ActiveSession") == "/"
        assert state_files(env.state_dir) == stored
        assert not env.call(daemonenv.ROOT, daemonenv.M1, "ListSessions", None, "(ao)")[0]

        # The restarted service works, and cleans up after itself.
        session = env.connect(victim)
        env.wait_state(session, "connected")
        tun = env.prop(session, daemonenv.S1, "Interface")
        labmod.wait_for(lambda: env.resolvconf_records(), 5, what="the resolvconf record")
        assert env.resolvconf_records() == [tun + ".shimmer"]
        env.disconnect(session)
        env.wait_state(session, ("disconnected", None))
        labmod.wait_for(lambda: not env.shimmerd_routes() and not env.resolvconf_records()
                        and not env.tun_links(), 10, what="the session's state to go")
        assert routes(lab) == baseline
        assert env.daemon.alive()
        assert not env.sanitizer_reports(), env.sanitizer_reports()
        report("service-sigkill", "shimmerd", left_after_kill=stale,
               clean_after_restart_s=round(cleaned, 2))


CYCLE_FIGURES = {}


def test_service_connect_disconnect_cycles(lab):
    """CYCLES connect/disconnect cycles through the service: its file
    descriptors and its live heap come back to the baseline, with nothing
    left in the namespace. (RSS: see the next test.)"""
    shimmerd = _shimmerd_or_skip()
    fault_server(lab, extra=['push "dhcp-option DNS %s"' % DNS_SERVER])
    # GLib 2.74's slice allocator keeps the chunks it carved from malloc,
    # and glibc's per-thread caches (GLib's worker threads come and go)
    # count freed chunks as in use: without both, the live heap is a
    # measure of what shimmerd holds (checked against heaptrack here).
    with service_env(lab, shimmerd, env={"G_SLICE": "always-malloc",
                                         "GLIBC_TUNABLES": "glibc.malloc.tcache_count=0"}) as env:
        env.start_daemon()
        baseline_routes = routes(lab)
        profile = env.import_profile("cycles", lab.client_config({"inline": True,
                                                                  "extra": QUICK}))

        def cycle():
            session = env.connect(profile)
            state = env.wait_state(session, ("connected", "failed"), timeout=20,
                                   interval=0.005)
            assert state == "connected", (state, env.prop(session, daemonenv.S1, "StateReason"))
            env.disconnect(session)
            env.wait_state(session, ("disconnected", None), timeout=20, interval=0.005)

        def settled():
            # Ended sessions linger a few seconds for their final state.
            labmod.wait_for(lambda: not env.call(daemonenv.ROOT, daemonenv.M1, "ListSessions",
                                                 None, "(ao)")[0], 30,
                            what="the ended sessions to go")
            time.sleep(0.5)
            return (env.daemon.fd_count(), env.daemon.rss_kb(),
                    daemonenv.heap_in_use(env.daemon))

        # Warm up: the first sessions fill caches (GnuTLS, GLib's type
        # system, the bus connection's) that later ones reuse.
        fresh = (env.daemon.fd_count(), env.daemon.rss_kb())
        for _ in range(10):
            cycle()
        fd0, rss0, heap0 = settled()
        t0 = time.monotonic()
        samples = []
        for i in range(CYCLES):
            cycle()
            if (i + 1) % 50 == 0:
                samples.append((i + 1, env.daemon.fd_count(), env.daemon.rss_kb()))
        elapsed = time.monotonic() - t0
        fd1, rss1, heap1 = settled()
        print("fds %d -> %d, RSS %d -> %d KiB, heap in use %s -> %s over %d cycles (%.1f s); "
              "samples %s" % (fd0, fd1, rss0, rss1, heap0, heap1, CYCLES, elapsed, samples))
        CYCLE_FIGURES.update(fresh=fresh, rss0=rss0, rss1=rss1, cycles=CYCLES,
                             sanitized=daemonenv.is_sanitized(shimmerd.argv[0]))
        assert env.daemon.alive(), env.daemon.log_tail()
        assert fd1 == fd0, "shimmerd holds %d fds after %d cycles, %d before" % (fd1, CYCLES, fd0)
        assert not env.tun_links() and not env.resolvconf_records()
        assert not env.shimmerd_routes() and routes(lab) == baseline_routes
        if heap0 is not None:
            # Tolerance 64 KiB: a leak of 330 bytes or more per session
            # shows; what malloc holds for GLib's and GnuTLS's caches is
            # filled in the warm-up and moves by a few KiB.
            assert heap1 - heap0 <= 64 * 1024, (
                "shimmerd's live heap grew by %d bytes over %d cycles" % (heap1 - heap0, CYCLES))
        assert not env.sanitizer_reports(), env.sanitizer_reports()
        report("service-cycles", "shimmerd", cycles=CYCLES, seconds=round(elapsed, 1),
               per_cycle_ms=round(1000 * elapsed / CYCLES, 1), fds=[fd0, fd1],
               rss_kib=[fresh[1], rss0, rss1], heap_in_use=[heap0, heap1], samples=samples)


def test_service_rss_back_to_baseline_after_cycles():
    """After the cycles of the previous test, shimmerd's RSS is back within
    2 MiB of what it was after the warm-up. (The live heap is checked there;
    this is what a user sees in top.)"""
    if not CYCLE_FIGURES:
        pytest.skip("the cycles test did not run")
    if CYCLE_FIGURES["sanitized"]:
        pytest.skip("sanitized build: the allocator's quarantine holds freed memory")
    grown = CYCLE_FIGURES["rss1"] - CYCLE_FIGURES["rss0"]
    assert grown <= 2048, "RSS %d KiB after %d cycles, %d KiB before (%+d KiB)" % (
        CYCLE_FIGURES["rss1"], CYCLE_FIGURES["cycles"], CYCLE_FIGURES["rss0"], grown)
