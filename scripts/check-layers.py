#!/usr/bin/python3
"""Checks the layering of Shimmer's C code from its #include lines.

Layers, lowest first; a file may include headers of its own layer or of a
lower one, never of a higher one:

    src/              libshimmer: the engine and the parser (no I/O)
    service/os/       tun, netlink, DNS, logging
    service/tunnel/   one engine over a link and a tun
    service/manager/  profiles, sessions, the store; no D-Bus types
    service/bus/      the D-Bus front
    service/*.c       main() of shimmerd

service/ctl/ (shimmerctl) and nm-plugin/ are clients of the daemon: they may
include src/ and their own headers, nothing of service/ below them.

Besides, no import circle is allowed anywhere: a module is a .c file with
its .h, and modules must not reach themselves through includes.

Exit status 0 when all is well, 1 with one line per problem otherwise.
Standard library only; run from anywhere: scripts/check-layers.py [ROOT].
"""

import os
import re
import sys

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                       os.path.join(os.path.dirname(__file__), ".."))
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)

# directory (relative to ROOT) -> (rank, group). Files may include their own
# group and the groups listed as allowed below.
LAYERS = [
    ("src", 0),
    ("service/os", 1),
    ("service/tunnel", 2),
    ("service/manager", 3),
    ("service/bus", 4),
    ("service", 5),  # main() files directly in service/
]
# Clients: may include only these directories besides their own.
CLIENTS = {
    "service/ctl": ("src",),
    "nm-plugin": ("src",),
    "nm-plugin/auth-dialog": ("src", "nm-plugin"),
}
SERVICE_SUBDIRS = ("os", "tunnel", "manager", "bus", "ctl")
# Headers generated at build time, outside the tree.
GENERATED = {"shimmer-build-config.h", "shimmer-dbus-generated.h"}


def sources():
    for top in ("src", "service", "nm-plugin"):
        for dirpath, _, names in os.walk(os.path.join(ROOT, top)):
            for n in sorted(names):
                if n.endswith((".c", ".h")):
                    yield os.path.relpath(os.path.join(dirpath, n), ROOT)


def resolve(including, name):
    """The repository path of the header NAME as the build finds it: next to
    the including file, then under service/ (layer/file.h), then in src/."""
    here = os.path.dirname(including)
    for base in (here, "service", "src", "nm-plugin"):
        path = os.path.normpath(os.path.join(base, name))
        if os.path.isfile(os.path.join(ROOT, path)):
            return path
    return None


def home(path):
    """The directory that decides a file's layer or client group."""
    return os.path.dirname(path)


def rank(directory):
    for d, r in LAYERS:
        if directory == d:
            return r
    return None


def module(path):
    return os.path.splitext(path)[0]


def main():
    problems = []
    graph = {}
    for path in sources():
        text = open(os.path.join(ROOT, path), encoding="utf-8", errors="replace").read()
        mine = home(path)
        for name in INCLUDE.findall(text):
            if name in GENERATED:
                continue
            target = resolve(path, name)
            if target is None:
                problems.append("%s: includes \"%s\", which is not in the tree" % (path, name))
                continue
            theirs = home(target)
            if module(target) != module(path):
                graph.setdefault(module(path), set()).add(module(target))
            if theirs == mine:
                continue
            if mine in CLIENTS:
                if theirs not in CLIENTS[mine]:
                    problems.append("%s: includes %s; %s/ may include only %s" %
                                    (path, target, mine, ", ".join(d + "/" for d in CLIENTS[mine])))
                continue
            r_mine, r_theirs = rank(mine), rank(theirs)
            if r_mine is None:
                problems.append("%s: in no known layer (add its directory to scripts/check-layers.py)" % path)
                continue
            if r_theirs is None or r_theirs > r_mine:
                problems.append("%s: includes %s, from a higher layer (%s above %s)" %
                                (path, target, theirs + "/", mine + "/"))

    # Import circles: strongly connected components with more than one module.
    index, low, on_stack, stack, counter = {}, {}, set(), [], [0]
    circles = []

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    for c in circles:
        problems.append("import circle: " + " -> ".join(c) + " -> " + c[0])

    for p in problems:
        print(p)
    if problems:
        print("check-layers: %d problem(s)" % len(problems))
        return 1
    print("check-layers: %d modules, layering and no circles: ok" % len(graph))
    return 0


if __name__ == "__main__":
    sys.exit(main())
