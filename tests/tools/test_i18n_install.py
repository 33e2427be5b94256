# SPDX-License-Identifier: MIT
"""Translations and the installed documentation.

- po/POTFILES.in lists every source file with translatable strings, and
  only files that exist (so `meson compile shimmer-pot` works);
- every po/*.po is well-formed, its format strings match (msgfmt -c);
- `meson install --destdir` puts the .mo files under the localedir, the man
  pages under mandir and the bash completion where bash-completion looks;
- the installed German catalogue is the one the programs use: shimmerctl
  and shimmerd from the build tree, run with LANGUAGE=de in a private mount
  namespace in which the DESTDIR's localedir is mounted at the compiled-in
  LOCALEDIR (root; skips otherwise), speak German.

    MESON=meson SHIMMER_BUILDDIR=build SHIMMER_PREFIX=/usr/local ... \\
        python3 -m pytest tests/tools/test_i18n_install.py
"""
import glob
import os
import re
import shutil
import subprocess
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILDDIR = os.environ.get("SHIMMER_BUILDDIR", "")
MESON = os.environ.get("MESON", "meson")
PREFIX = os.environ.get("SHIMMER_PREFIX", "/usr/local")
LOCALEDIR = os.environ.get("SHIMMER_LOCALEDIR", "")
MANDIR = os.environ.get("SHIMMER_MANDIR", "")
COMPLETIONSDIR = os.environ.get("SHIMMER_COMPLETIONSDIR", "")
SHIMMERCTL = os.environ.get("SHIMMERCTL", "")
SHIMMERD = os.environ.get("SHIMMERD", "")


def absolute(path):
    return path if os.path.isabs(path) else os.path.join(PREFIX, path)


def test_potfiles_cover_the_translatable_sources():
    with open(os.path.join(REPO, "po", "POTFILES.in")) as f:
        listed = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    for path in listed:
        assert os.path.isfile(os.path.join(REPO, path)), "POTFILES.in: %s does not exist" % path
    marked = set()
    for path in glob.glob(os.path.join(REPO, "**", "*.c"), recursive=True):
        rel = os.path.relpath(path, REPO)
        if rel.startswith(("tests/", "_build", "build")):
            continue
        with open(path, errors="replace") as f:
            if re.search(r"\b(?:N_|_|C_|NC_)\(\s*\"", f.read()):
                marked.add(rel)
    assert marked, "no translatable strings found"
    missing = sorted(marked - set(listed))
    assert not missing, "files with _() strings missing from po/POTFILES.in: %s" % missing


def test_translations_are_well_formed():
    if shutil.which("msgfmt") is None:
        pytest.skip("msgfmt (gettext) is not installed")
    with open(os.path.join(REPO, "po", "LINGUAS")) as f:
        languages = [w for line in f if not line.startswith("#") for w in line.split()]
    assert "de" in languages
    for lang in languages:
        po = os.path.join(REPO, "po", lang + ".po")
        r = subprocess.run(["msgfmt", "-c", "--statistics", "-o", "/dev/null", po],
                           capture_output=True, text=True, env=dict(os.environ, LC_ALL="C"))
        assert r.returncode == 0, r.stderr
        assert "fuzzy" not in r.stderr, r.stderr


def run_in(env, argv):
    return subprocess.run(argv, capture_output=True, text=True, timeout=30,
                          env=dict(os.environ, **env), stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def destdir():
    if not BUILDDIR or not os.path.isdir(BUILDDIR):
        pytest.skip("no build directory (set $SHIMMER_BUILDDIR)")
    d = tempfile.mkdtemp(prefix="shimmer-i18n-")
    try:
        r = subprocess.run([MESON, "install", "-C", BUILDDIR, "--destdir", d, "--no-rebuild",
                            "--quiet"], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_install_puts_catalogues_man_pages_and_completion(destdir):
    if not (LOCALEDIR and MANDIR and COMPLETIONSDIR):
        pytest.skip("set $SHIMMER_LOCALEDIR, $SHIMMER_MANDIR and $SHIMMER_COMPLETIONSDIR")
    root = lambda p: destdir + absolute(p)  # noqa: E731
    mo = os.path.join(root(LOCALEDIR), "de", "LC_MESSAGES", "shimmer.mo")
    assert os.path.isfile(mo), "no %s" % mo
    for page in ("man1/shimmerctl.1", "man8/shimmerd.8", "man5/org.shimmervpn.5"):
        assert os.path.isfile(os.path.join(root(MANDIR), page)), page
    completion = os.path.join(root(COMPLETIONSDIR), "shimmerctl")
    assert os.path.isfile(completion)
    with open(completion) as f:
        assert "complete -F _shimmerctl shimmerctl" in f.read()


def test_programs_speak_the_installed_german(destdir):
    if os.geteuid() != 0:
        pytest.skip("needs root (a private mount namespace puts the installed catalogues at "
                    "the compiled-in LOCALEDIR)")
    if not LOCALEDIR or not os.access(SHIMMERCTL, os.X_OK) or not os.access(SHIMMERD, os.X_OK):
        pytest.skip("set $SHIMMER_LOCALEDIR, $SHIMMERCTL and $SHIMMERD")
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    # Mount the DESTDIR's copy over the deepest directory of LOCALEDIR that
    # exists here (only inside the new mount namespace: nothing outside it
    # sees the mount, and it goes with the namespace).
    target = absolute(LOCALEDIR)
    while not os.path.isdir(target):
        target = os.path.dirname(target)
    if target in ("/", "/usr", "/usr/lib", "/lib", "/etc", "/usr/bin"):
        pytest.skip("the localedir's nearest existing directory is %s; it cannot be "
                    "covered for the test" % target)
    source = destdir + target
    assert os.path.isdir(source), source

    def german(argv):
        script = 'mount --bind "$1" "$2" && shift 2 && exec "$@"'
        return subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, "sh",
             source, target] + argv, capture_output=True, text=True, timeout=30,
            env=dict(os.environ, LANGUAGE="de", LC_ALL="C.UTF-8"), stdin=subprocess.DEVNULL)

    r = german([SHIMMERCTL, "--help"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Aufruf: shimmerctl [--bus-address ADRESSE] BEFEHL"), r.stdout
    assert "Rückgabewert:" in r.stdout and "  4  nicht berechtigt" in r.stdout, r.stdout
    r = german([SHIMMERCTL, "frobnicate"])
    assert r.returncode == 2 and "unbekannter Befehl »frobnicate«" in r.stderr, r.stderr
    r = german([SHIMMERD, "--help"])
    assert r.returncode == 0 and "Die Version ausgeben" in r.stdout, r.stdout
    r = german([SHIMMERD])
    assert r.returncode == 2 and "geben Sie --system" in r.stderr, r.stderr
    # Without the catalogue mounted the same run is English: the German
    # came from the installed file.
    r = run_in({"LANGUAGE": "de", "LC_ALL": "C.UTF-8"}, [SHIMMERCTL, "--help"])
    if not os.path.isfile(os.path.join(absolute(LOCALEDIR), "de", "LC_MESSAGES", "shimmer.mo")):
        assert r.stdout.startswith("Usage: shimmerctl"), r.stdout
