# SPDX-License-Identifier: MIT
"""The manual pages (doc/): they render without a warning, and they cannot
drift from the programs: every option and command `shimmerctl --help` (and
each command's --help) lists is in shimmerctl.1, every option of
`shimmerd --help` in shimmerd.8, and no option is documented that the
programs do not have; org.shimmervpn.5 names every method, signal and
property of dbus/*.xml and every error name of the daemon.

    SHIMMER_MAN_DIR=build/doc SHIMMERCTL=... SHIMMERD=... python3 -m pytest tests/tools/test_man_pages.py
"""
import glob
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
MAN_DIR = os.environ.get("SHIMMER_MAN_DIR", "")
SHIMMERCTL = os.environ.get("SHIMMERCTL", "")
SHIMMERD = os.environ.get("SHIMMERD", "")
PAGES = ["shimmerctl.1", "shimmerd.8", "org.shimmervpn.5"]
ENV = dict(os.environ, LC_ALL="C.UTF-8", LANGUAGE="", MANWIDTH="80")


def page_path(name):
    path = os.path.join(MAN_DIR, name)
    if not os.path.isfile(path):
        pytest.skip("%s not built (set $SHIMMER_MAN_DIR to the build's doc/)" % name)
    return path


def source_text(name):
    """The page's roff with the font escapes gone and \\- as -: what the
    words are, whatever the formatting."""
    with open(page_path(name)) as f:
        text = f.read()
    text = re.sub(r"\\f(\[[A-Z]*\]|[BIRP])", "", text)
    text = text.replace("\\-", "-").replace("\\e", "\\").replace("\\&", "")
    return text


def section(text, name):
    """The lines of section .SH NAME (up to the next .SH)."""
    m = re.search(r"^\.SH \"?%s\"?\n(.*?)(?=^\.SH |\Z)" % re.escape(name), text, re.M | re.S)
    assert m, "no section %s" % name
    return m.group(1)


def options_in(text):
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*[a-z]|-[a-z])(?![\w-])", text))


def run_help(argv):
    r = subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=30)
    assert r.returncode == 0, "%s: exit %d\n%s" % (argv, r.returncode, r.stderr)
    return r.stdout


@pytest.mark.parametrize("name", PAGES)
def test_page_renders_without_warnings(name):
    path = page_path(name)
    if shutil.which("man") is None or shutil.which("groff") is None:
        pytest.skip("man (man-db) and groff are needed")
    r = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", path], capture_output=True,
                       text=True, env=ENV, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert "NAME" in r.stdout and "SEE ALSO" in r.stdout
    # The whole text comes through (no line eaten as an unknown request).
    body = re.sub(r'^\.\\".*$', "", source_text(name), flags=re.M)   # comments
    words = re.findall(r"[A-Za-z]{4,}", re.sub(r"^\.\S+|\\\S", "", body, flags=re.M))
    rendered = re.sub(r"\s+", " ", r.stdout)
    missing = [w for w in set(words) if w not in rendered]
    assert not missing, "words of the source not rendered: %s" % missing[:20]
    r = subprocess.run(["groff", "-ww", "-z", "-b", "-t", "-man", path], capture_output=True,
                       text=True, env=ENV, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_shimmerctl_page_matches_its_help():
    if not os.access(SHIMMERCTL, os.X_OK):
        pytest.skip("shimmerctl not built (set $SHIMMERCTL)")
    text = source_text("shimmerctl.1")
    usage = run_help([SHIMMERCTL, "--help"])
    commands = re.findall(r"^  ([a-z]+) ", usage.split("Commands:", 1)[1].split("\n\n", 1)[0],
                          re.M)
    assert len(commands) >= 10, usage
    helps = [usage] + [run_help([SHIMMERCTL, c, "--help"]) for c in commands]
    # main.c takes --version, --help and -h besides what the usage lists.
    options = set().union(*(options_in(h) for h in helps)) | {"--version", "--help", "-h"}
    assert {"--bus-address", "--json", "--wait", "--transient"} <= options, options

    documented = section(text, "COMMANDS") + section(text, "OPTIONS") + \
        section(text, "SYNOPSIS")
    for option in sorted(options):
        assert re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(option), documented), \
            "shimmerctl.1 does not describe %s" % option
    for command in commands:
        assert re.search(r"^\.B[IR]? %s\b" % command, section(text, "COMMANDS"), re.M), \
            "shimmerctl.1 has no entry for the command %s" % command
    # And nothing that is not there ("--option=value" is the general form).
    extra = options_in(documented) - options - {"--option"}
    assert not extra, "shimmerctl.1 documents options shimmerctl does not have: %s" % extra

    # The exit codes of --help, each in EXIT STATUS.
    codes = re.findall(r"^  (\d)  ", usage.split("Exit status:", 1)[1], re.M)
    assert codes == ["0", "1", "2", "3", "4"], usage
    exit_section = section(text, "EXIT STATUS")
    for code in codes:
        assert re.search(r"^\.B %s$" % code, exit_section, re.M), code
    assert "SHIMMER_BUS_ADDRESS" in usage and "SHIMMER_BUS_ADDRESS" in section(text, "ENVIRONMENT")


def test_shimmerd_page_matches_its_help():
    if not os.access(SHIMMERD, os.X_OK):
        pytest.skip("shimmerd not built (set $SHIMMERD)")
    text = source_text("shimmerd.8")
    usage = run_help([SHIMMERD, "--help"])
    options = options_in(usage)
    assert {"--system", "--config", "-c", "--state-dir", "--verbose", "-v"} <= options, usage
    documented = section(text, "OPTIONS")
    for option in sorted(options):
        assert re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(option), documented), \
            "shimmerd.8 does not describe %s" % option
    extra = options_in(documented + section(text, "SYNOPSIS")) - options
    assert not extra, "shimmerd.8 documents options shimmerd does not have: %s" % extra
    # Each option's value placeholder is the one --help shows, in lower case.
    for option, value in re.findall(r"(--[a-z-]+)=([A-Z]+)", usage):
        assert re.search(r"%s= *%s\b" % (re.escape(option), value.lower()), documented), \
            "%s=%s" % (option, value.lower())
    assert "/var/lib/shimmer" in section(text, "FILES")
    assert "/var/lib/shimmer" in usage


def test_dbus_page_names_the_whole_api():
    text = source_text("org.shimmervpn.5")
    names = set()
    for path in glob.glob(os.path.join(REPO, "dbus", "org.shimmervpn.*.xml")):
        for iface in ET.parse(path).getroot().iter("interface"):
            assert re.search(r"^\.SH %s$" % re.escape(iface.get("name").upper()), text, re.M), \
                "org.shimmervpn.5 has no section for %s" % iface.get("name")
            for kind in ("method", "signal", "property"):
                names |= {(kind, e.get("name")) for e in iface.iter(kind)}
    assert len(names) > 40, names
    for kind, name in sorted(names):
        assert re.search(r"\b%s\b" % name, text), "org.shimmervpn.5 does not name %s %s" % (
            kind, name)
    errors = set()
    for path in glob.glob(os.path.join(REPO, "service", "**", "*.c"), recursive=True):
        with open(path) as f:
            errors |= set(re.findall(r'"(org\.shimmervpn\.Error\.\w+)"', f.read()))
    assert errors, "no error names found in service/"
    for error in sorted(errors):
        assert error in section(text, "ERRORS"), "org.shimmervpn.5 does not list %s" % error
    with open(os.path.join(REPO, "data", "org.shimmervpn.policy")) as f:
        actions = set(re.findall(r'<action id="([^"]+)"', f.read()))
    assert actions
    for action in sorted(actions):
        assert action in section(text, "AUTHORIZATION"), action
