#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Runs the configuration corpus (tests/corpus/) through `shimmerctl check`.

Usage: run-corpus.py --shimmerctl PATH --corpus DIR [--update] [--timeout S]

DIR/MANIFEST holds one entry per corpus file:

    ok-foo.ovpn accept
      warning 7 persist-key        (optional; LINE and a message substring)
    bad-bar.ovpn refuse
      error 12 fragment            (one or more)

Blank lines and lines starting with '#' are ignored. SUBSTRING is the rest of
the line and is matched case-insensitively against the message of a
diagnostic `NAME.ovpn:LINE: warning|error: MESSAGE` on stderr. Diagnostics not
listed are allowed, except that an accepted file may print no error at all.

For an accepted file:
  1. `shimmerctl check NAME.ovpn` (cwd DIR) exits 0, prints no error and
     every listed warning;
  2. `check NAME.ovpn` run from another directory with the absolute path
     also exits 0 (relative paths resolve against the file's directory);
  3. `check --json NAME.ovpn` exits 0 and prints JSON equal to DIR/NAME.json
     (written by --update when missing or different);
  4. `check --inline NAME.ovpn` exits 0; its output, saved as NAME.ovpn in an
     empty temporary directory, passes `check --json` with the same JSON once
     every "source" and "file" key is deleted from both.
For a refused file: `check NAME.ovpn` exits 1 and prints every listed error.

Absolute paths in JSON strings that start with DIR (or with where DIR/keys
points) are replaced by "@CORPUS@" before comparing or writing, so the
expected files do not depend on where the tree is checked out.

On every run, no secret may appear in stdout or stderr: the lines of the
secret fixtures (tests/data via DIR/keys), of DIR/files/*.auth, and of the
secret-bearing inline blocks of the corpus file itself. The stdout of
`check --inline` is exempt, since it is meant to carry the keys.

DIR/COVERAGE lists directive forms that the accepted files must use between
them, one a line: `<name>` for an inline block, else the leading tokens of a
directive where `*` matches any one token and a final `$` means no more
arguments. It is checked as one more entry named COVERAGE.

Prints `ok NAME` or `FAIL NAME: reason` per file, then `N passed, M failed`.
Exits 1 if anything failed, 77 if the shimmerctl binary does not exist.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

SECRET_FIXTURES = [
    'client.key', 'client-enc.key', 'rsa.key', 'server.key', 'ta.key',
    'tc.key', 'tc-v2-client.key', 'tc-v2-server.key', 'client.p12.b64',
]
# Short whole-file secrets (a passphrase): matched whatever their length.
SECRET_PASS_FIXTURES = ['client-enc.pass']
SECRET_BLOCKS = {'key', 'tls-auth', 'tls-crypt', 'tls-crypt-v2', 'secret',
                 'pkcs12', 'auth-user-pass', 'http-proxy-user-pass', 'auth-gen-token-secret'}
MIN_SECRET_LINE = 16

DIAG_RE = re.compile(r'^(?P<file>.+?):(?P<line>[0-9]+): (?P<kind>error|warning): (?P<msg>.*)$')
ERROR_RE = re.compile(r'(^|:\s?)error:')


class Fail(Exception):
    pass


# ---------------------------------------------------------------- lexing ----

def split_tokens(line):
    """Tokens of one line with OpenVPN quoting; None if it does not lex."""
    tokens, cur, have, i, n = [], [], False, 0, len(line)
    while i < n:
        c = line[i]
        if c in ' \t':
            if have:
                tokens.append(''.join(cur))
                cur, have = [], False
            i += 1
        elif c in '#;' and not have:
            break
        elif c == '\\':
            if i + 1 >= n:
                return None
            cur.append(line[i + 1])
            have = True
            i += 2
        elif c == '"':
            i += 1
            have = True
            while i < n and line[i] != '"':
                if line[i] == '\\' and i + 1 < n:
                    i += 1
                cur.append(line[i])
                i += 1
            if i >= n:
                return None
            i += 1
        elif c == "'":
            j = line.find("'", i + 1)
            if j < 0:
                return None
            cur.append(line[i + 1:j])
            have = True
            i = j + 1
        else:
            cur.append(c)
            have = True
            i += 1
    if have:
        tokens.append(''.join(cur))
    return tokens


def text_lines(raw):
    text = raw.decode('utf-8', errors='replace')
    if text.startswith('\ufeff'):
        text = text[1:]
    return [l[:-1] if l.endswith('\r') else l for l in text.split('\n')]


def lex(lines, first_line=1):
    """Yields ('directive', line, argv) and ('block', line, name, body_lines).
    Lenient: a line that does not lex is skipped, an unterminated block runs
    to the end of the text."""
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r'^\s*<([A-Za-z0-9_-]+)>\s*$', line)
        if m:
            name, body, j = m.group(1), [], i + 1
            while j < len(lines) and lines[j].strip() != '</%s>' % name:
                body.append(lines[j])
                j += 1
            yield ('block', first_line + i, name, body)
            i = j + 1
            continue
        toks = split_tokens(line)
        if toks:
            if toks[0].startswith('--'):
                toks[0] = toks[0][2:]
            yield ('directive', first_line + i, toks)
        i += 1


def items_deep(lines):
    """Like lex(), with the bodies of <connection> blocks lexed too."""
    for item in lex(lines):
        yield item
        if item[0] == 'block' and item[2] == 'connection':
            for sub in lex(item[3], item[1] + 1):
                yield sub


# --------------------------------------------------------------- secrets ----

def secret_lines(lines, origin, into):
    for l in lines:
        s = l.strip()
        if len(s) < MIN_SECRET_LINE or s.startswith('#') or s.startswith('-----'):
            continue
        into.setdefault(s, origin)


def global_secrets(corpus):
    secrets = {}
    keys = os.path.join(corpus, 'keys')
    for name in SECRET_FIXTURES:
        with open(os.path.join(keys, name), 'rb') as f:
            secret_lines(text_lines(f.read()), 'a line of ' + name, secrets)
    for name in SECRET_PASS_FIXTURES:
        with open(os.path.join(keys, name), 'rb') as f:
            s = f.read().decode('utf-8', errors='replace').strip()
        if s:
            secrets.setdefault(s, 'the passphrase in ' + name)
    files = os.path.join(corpus, 'files')
    if os.path.isdir(files):
        for name in sorted(os.listdir(files)):
            if name.endswith('.auth'):
                with open(os.path.join(files, name), 'rb') as f:
                    secret_lines(text_lines(f.read()), 'a line of files/' + name, secrets)
    return secrets


def block_secrets(raw, label, into):
    for item in lex(text_lines(raw)):
        if item[0] == 'block' and item[2] in SECRET_BLOCKS:
            secret_lines(item[3], 'a line of the <%s> block at %s:%d' % (item[2], label, item[1]),
                         into)


def json_strings(obj, out):
    if isinstance(obj, str):
        out.append(obj)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.append(k)
            json_strings(v, out)
    elif isinstance(obj, list):
        for v in obj:
            json_strings(v, out)


def check_no_secret(what, secrets, streams):
    for stream_name, text in streams:
        if not text:
            continue
        hay = [text]
        if stream_name == 'stdout':
            try:
                strs = []
                json_strings(json.loads(text), strs)
                hay.append('\n'.join(strs))
            except ValueError:
                pass
        for s, origin in secrets.items():
            if any(s in h for h in hay):
                # Never print the secret itself.
                raise Fail('%s: %s appears in %s' % (what, origin, stream_name))


# ------------------------------------------------------------- running ----

class Runner:
    def __init__(self, shimmerctl, corpus, timeout):
        self.shimmerctl = shimmerctl
        self.corpus = corpus
        self.timeout = timeout

    def run(self, args, cwd):
        try:
            p = subprocess.run([self.shimmerctl] + args, cwd=cwd, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise Fail('`check %s` timed out after %ss' % (' '.join(args[1:]), self.timeout))
        out = p.stdout.decode('utf-8', errors='replace')
        err = p.stderr.decode('utf-8', errors='replace')
        return p.returncode, out, err


def describe_rc(rc):
    return 'killed by signal %d' % -rc if rc < 0 else 'exit %d' % rc


def stderr_excerpt(err, limit=12):
    lines = [l for l in err.splitlines() if l.strip()]
    more = len(lines) - limit
    lines = lines[:limit]
    if more > 0:
        lines.append('... (%d more lines)' % more)
    return ''.join('\n    | ' + l for l in lines)


def diagnostics(err):
    out = []
    for l in err.splitlines():
        m = DIAG_RE.match(l.rstrip('\r'))
        if m:
            out.append((m.group('file'), int(m.group('line')), m.group('kind'), m.group('msg')))
    return out


def error_lines(err):
    return [l for l in err.splitlines() if ERROR_RE.search(l)]


def missing_diags(fname, expected, err):
    diags = diagnostics(err)
    missing = []
    for kind, line, sub in expected:
        if not any(f == fname and ln == line and k == kind and sub.lower() in msg.lower()
                   for f, ln, k, msg in diags):
            missing.append('%s at line %d containing "%s"' % (kind, line, sub))
    return missing


def normalize_paths(obj, prefixes):
    if isinstance(obj, str):
        for old, new in prefixes:
            if obj == old or obj.startswith(old + '/'):
                return new + obj[len(old):]
        return obj
    if isinstance(obj, dict):
        return {k: normalize_paths(v, prefixes) for k, v in obj.items()}
    if isinstance(obj, list):
        return [normalize_paths(v, prefixes) for v in obj]
    return obj


def path_prefixes(dirs_to_tag):
    """[(absolute prefix, replacement)], longest first."""
    pairs = {}
    for d, tag in dirs_to_tag:
        for p in (os.path.abspath(d), os.path.realpath(d)):
            pairs.setdefault(p, tag)
    return sorted(pairs.items(), key=lambda kv: -len(kv[0]))


def strip_keys(obj, names=('source', 'file')):
    if isinstance(obj, dict):
        return {k: strip_keys(v, names) for k, v in obj.items() if k not in names}
    if isinstance(obj, list):
        return [strip_keys(v, names) for v in obj]
    return obj


def first_difference(a, b, path='$'):
    if type(a) is not type(b):
        return '%s: %s vs %s' % (path, type(a).__name__, type(b).__name__)
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a:
                return '%s.%s: in the output, not in the expected JSON' % (path, k)
            if k not in b:
                return '%s.%s: in the expected JSON, missing from the output' % (path, k)
            d = first_difference(a[k], b[k], '%s.%s' % (path, k))
            if d:
                return d
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return '%s: %d items vs %d expected' % (path, len(b), len(a))
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, '%s[%d]' % (path, i))
            if d:
                return d
        return None
    if a != b:
        return '%s: %s vs %s expected' % (path, json.dumps(b)[:80], json.dumps(a)[:80])
    return None


def parse_json(out, what):
    try:
        return json.loads(out)
    except ValueError as e:
        raise Fail('%s: stdout is not JSON (%s)' % (what, e))


def check_accept(r, name, fname, expected, secrets, update):
    corpus = r.corpus
    # 1. Plain check.
    rc, out, err = r.run(['check', fname], corpus)
    check_no_secret('check', secrets, [('stdout', out), ('stderr', err)])
    if rc != 0:
        raise Fail('check: %s, expected 0%s' % (describe_rc(rc), stderr_excerpt(err)))
    if error_lines(err):
        raise Fail('check: printed an error%s' % stderr_excerpt('\n'.join(error_lines(err))))
    miss = missing_diags(fname, expected, err)
    if miss:
        raise Fail('check: no %s%s' % ('; no '.join(miss), stderr_excerpt(err)))

    with tempfile.TemporaryDirectory(prefix='shimmer-corpus-') as tmp:
        # 2. From another directory, by absolute path.
        rc, out, err = r.run(['check', os.path.join(os.path.abspath(corpus), fname)], tmp)
        check_no_secret('check from another directory', secrets, [('stdout', out), ('stderr', err)])
        if rc != 0:
            raise Fail('check by absolute path from another directory: %s, expected 0%s'
                       % (describe_rc(rc), stderr_excerpt(err)))

        # 3. JSON against NAME.json.
        prefixes = path_prefixes([(os.path.join(corpus, 'keys'), '@CORPUS@/keys'),
                                  (corpus, '@CORPUS@')])
        rc, out, err = r.run(['check', '--json', fname], corpus)
        check_no_secret('check --json', secrets, [('stdout', out), ('stderr', err)])
        if rc != 0:
            raise Fail('check --json: %s, expected 0%s' % (describe_rc(rc), stderr_excerpt(err)))
        if error_lines(err):
            raise Fail('check --json: printed an error%s'
                       % stderr_excerpt('\n'.join(error_lines(err))))
        got = normalize_paths(parse_json(out, 'check --json'), prefixes)
        jpath = os.path.join(corpus, name + '.json')
        note = ''
        expected_json = None
        if os.path.exists(jpath):
            with open(jpath, encoding='utf-8') as f:
                try:
                    expected_json = json.load(f)
                except ValueError as e:
                    raise Fail('%s.json is not JSON (%s)' % (name, e))
        if expected_json != got:
            if not update:
                if expected_json is None:
                    raise Fail('%s.json is missing (run with --update, then review it)' % name)
                raise Fail('check --json differs from %s.json: %s'
                           % (name, first_difference(expected_json, got)))
            with open(jpath, 'w', encoding='utf-8') as f:
                f.write(json.dumps(got, indent=2, sort_keys=True, ensure_ascii=False) + '\n')
            note = ' (wrote %s.json)' % name

        # 4. --inline round trip, in a directory with no keys/ beside it.
        rc, out, err = r.run(['check', '--inline', fname], corpus)
        check_no_secret('check --inline', secrets, [('stderr', err)])
        if rc != 0:
            raise Fail('check --inline: %s, expected 0%s' % (describe_rc(rc), stderr_excerpt(err)))
        if error_lines(err):
            raise Fail('check --inline: printed an error%s'
                       % stderr_excerpt('\n'.join(error_lines(err))))
        if not out.strip():
            raise Fail('check --inline: printed nothing')
        inlined = os.path.join(tmp, fname)
        with open(inlined, 'w', encoding='utf-8') as f:
            f.write(out)
        secrets2 = dict(secrets)
        block_secrets(out.encode('utf-8'), 'the --inline output', secrets2)
        rc, out2, err2 = r.run(['check', '--json', fname], tmp)
        check_no_secret('check --json of the --inline output', secrets2,
                        [('stdout', out2), ('stderr', err2)])
        if rc != 0:
            raise Fail('check --json of the --inline output: %s, expected 0%s'
                       % (describe_rc(rc), stderr_excerpt(err2)))
        if error_lines(err2):
            raise Fail('check --json of the --inline output: printed an error%s'
                       % stderr_excerpt('\n'.join(error_lines(err2))))
        got2 = normalize_paths(parse_json(out2, 'check --json of the --inline output'),
                               path_prefixes([(tmp, '@CORPUS@')]))
        a, b = strip_keys(got), strip_keys(got2)
        if a != b:
            raise Fail('--inline round trip changes the JSON: %s' % first_difference(a, b))
    return note


def check_refuse(r, name, fname, expected, secrets):
    rc, out, err = r.run(['check', fname], r.corpus)
    check_no_secret('check', secrets, [('stdout', out), ('stderr', err)])
    if rc != 1:
        raise Fail('check: %s, expected 1%s' % (describe_rc(rc), stderr_excerpt(err)))
    miss = missing_diags(fname, expected, err)
    if miss:
        raise Fail('check: no %s%s' % ('; no '.join(miss), stderr_excerpt(err)))
    return ''


# ------------------------------------------------------------ manifest ----

def read_manifest(path):
    """Returns ({fname: (verdict, [(kind, line, substring)])}, [problems])."""
    entries, problems, cur = {}, [], None
    with open(path, encoding='utf-8') as f:
        for no, raw in enumerate(f, 1):
            line = raw.rstrip('\r\n')
            if not line.strip() or line.lstrip().startswith('#'):
                continue
            if not line[0].isspace():
                parts = line.split()
                if len(parts) != 2 or parts[1] not in ('accept', 'refuse') \
                        or not parts[0].endswith('.ovpn') or '/' in parts[0]:
                    problems.append('line %d: expected "NAME.ovpn accept|refuse"' % no)
                    cur = None
                    continue
                if parts[0] in entries:
                    problems.append('line %d: %s listed twice' % (no, parts[0]))
                cur = parts[0]
                entries[cur] = (parts[1], [])
                continue
            m = re.match(r'^\s+(warning|error)\s+([0-9]+)\s+(\S.*?)\s*$', line)
            if not m or cur is None:
                problems.append('line %d: expected "  warning|error LINE SUBSTRING" under an entry'
                                % no)
                continue
            kind, ln, sub = m.group(1), int(m.group(2)), m.group(3)
            verdict = entries[cur][0]
            if (verdict == 'accept') != (kind == 'warning'):
                problems.append('line %d: %s listed for a file expected to %s'
                                % (no, kind, verdict))
                continue
            entries[cur][1].append((kind, ln, sub))
    for fname, (verdict, exp) in entries.items():
        if verdict == 'refuse' and not exp:
            problems.append('%s: refuse needs at least one error line' % fname)
    return entries, problems


def check_coverage(corpus, entries):
    """Every pattern in DIR/COVERAGE must occur in some accepted file."""
    path = os.path.join(corpus, 'COVERAGE')
    with open(path, encoding='utf-8') as f:
        patterns = [l.split() for l in f
                    if l.strip() and not l.lstrip().startswith('#')]
    seen_dirs, seen_blocks = [], set()
    for fname, (verdict, _) in entries.items():
        if verdict != 'accept' or not os.path.exists(os.path.join(corpus, fname)):
            continue
        with open(os.path.join(corpus, fname), 'rb') as f:
            lines = text_lines(f.read())
        for item in items_deep(lines):
            if item[0] == 'block':
                seen_blocks.add(item[2])
            else:
                seen_dirs.append(item[2])
    missing = []
    for pat in patterns:
        if len(pat) == 1 and re.match(r'^<[A-Za-z0-9_-]+>$', pat[0]):
            ok = pat[0][1:-1] in seen_blocks
        else:
            exact = pat[-1] == '$'
            want = pat[:-1] if exact else pat
            ok = any((len(argv) == len(want) if exact else len(argv) >= len(want)) and
                     all(p == '*' or p == a for p, a in zip(want, argv))
                     for argv in seen_dirs)
        if not ok:
            missing.append(' '.join(pat))
    if missing:
        raise Fail('%d of %d forms used by no accepted file: %s'
                   % (len(missing), len(patterns), ', '.join(missing)))
    return ' (%d forms)' % len(patterns)


# ---------------------------------------------------------------- main ----

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--shimmerctl', required=True)
    ap.add_argument('--corpus', required=True)
    ap.add_argument('--update', action='store_true',
                    help='write NAME.json files that are missing or differ')
    ap.add_argument('--timeout', type=float, default=30.0,
                    help='seconds allowed for one shimmerctl run')
    args = ap.parse_args()

    shimmerctl = os.path.abspath(args.shimmerctl)
    if not os.path.exists(shimmerctl):
        print('skip: %s does not exist' % shimmerctl)
        return 77
    corpus = os.path.abspath(args.corpus)
    r = Runner(shimmerctl, corpus, args.timeout)
    passed = failed = 0

    def report(name, err=None, note=''):
        nonlocal passed, failed
        if err is None:
            passed += 1
            print('ok %s%s' % (name, note))
        else:
            failed += 1
            print('FAIL %s: %s' % (name, err))
        sys.stdout.flush()

    manifest = os.path.join(corpus, 'MANIFEST')
    if not os.path.isfile(manifest):
        report('MANIFEST', 'no %s' % manifest)
        print('%d passed, %d failed' % (passed, failed))
        return 1
    entries, problems = read_manifest(manifest)
    for p in problems:
        report('MANIFEST', p)

    try:
        secrets = global_secrets(corpus)
    except OSError as e:
        report('SECRETS', 'cannot read the secret fixtures: %s' % e)
        secrets = None

    on_disk = {f for f in os.listdir(corpus) if f.endswith('.ovpn')}
    for fname in sorted(on_disk | set(entries)):
        name = fname[:-len('.ovpn')]
        if fname not in entries:
            report(name, 'no MANIFEST entry for %s' % fname)
            continue
        if fname not in on_disk:
            report(name, 'listed in MANIFEST but %s does not exist' % fname)
            continue
        if secrets is None:
            report(name, 'not run: no secret list')
            continue
        verdict, expected = entries[fname]
        try:
            file_secrets = dict(secrets)
            with open(os.path.join(corpus, fname), 'rb') as f:
                block_secrets(f.read(), fname, file_secrets)
            if verdict == 'accept':
                note = check_accept(r, name, fname, expected, file_secrets, args.update)
            else:
                note = check_refuse(r, name, fname, expected, file_secrets)
            report(name, None, note)
        except Fail as e:
            report(name, str(e))
        except OSError as e:
            report(name, 'cannot run: %s' % e)

    try:
        report('COVERAGE', None, check_coverage(corpus, entries))
    except Fail as e:
        report('COVERAGE', str(e))
    except OSError as e:
        report('COVERAGE', 'cannot read: %s' % e)

    print('%d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
