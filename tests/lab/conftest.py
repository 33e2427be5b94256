"""pytest fixtures for the network lab (tests/lab/lab.py).

`lab`        a fresh Lab (two namespaces + veth) per test, torn down after it;
             on failure the tails of all its logs are printed.
`client_cmd` the client implementation under test (a lab.ClientCommand).
             Parametrized from $LAB_CLIENTS, a comma list of "openvpn" and
             "shimmerd" (default: openvpn). shimmerd is taken from $SHIMMERD or
             the newest _build/*/service/shimmerd; its ready line from
             $SHIMMERD_READY (default "connected").
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lab as labmod  # noqa: E402


def _client_params():
    names = [n.strip() for n in os.environ.get("LAB_CLIENTS", "openvpn").split(",") if n.strip()]
    return names or ["openvpn"]


def _client_command(name):
    if name == "openvpn":
        return labmod.OPENVPN
    if name == "shimmerd":
        cmd = labmod.shimmerd_command()
        if cmd is None:
            where = os.environ.get("SHIMMERD")
            pytest.skip("shimmerd: $SHIMMERD=%s is not executable" % where if where else
                        "shimmerd not built (no _build/*/service/shimmerd; set $SHIMMERD)")
        return cmd
    raise pytest.UsageError("LAB_CLIENTS: unknown client %r" % name)


@pytest.fixture(params=_client_params())
def client_cmd(request):
    cmd = _client_command(request.param)
    if not cmd.available():
        pytest.skip("%s is not installed" % cmd.argv[0])
    return cmd


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "client: runs against the client implementation(s) in $LAB_CLIENTS")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def lab(request):
    reason = labmod.preflight()
    if reason:
        pytest.skip(reason)
    with labmod.Lab() as the_lab:
        yield the_lab
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            print("\n---- lab %s / %s: logs ----" % (the_lab.srv_ns, the_lab.cli_ns))
            print(the_lab.logs(60))
