#!/usr/bin/env python3
"""Runs clang-tidy on translation units, remembering the ones it found clean (for scripts/lint.sh).

    tidy_cached.py BUILD_DIR HEADER_FILTER JOBS FILE...

A unit is skipped when a clean run is remembered under the same key: the clang-tidy version,
.clang-tidy, the header filter, the unit's compile flags and its preprocessed text (every header
it includes, without line markers), all with the checkout's and build's paths taken out so that a
clone elsewhere shares the memory, as ccache does for objects. Findings are never remembered: a
unit with findings runs again next time. The memory lives in $SRIOVD_TIDY_CACHE (default
~/.cache/sriovd-tidy); SRIOVD_TIDY_CACHE=off turns it off. Exit status: 1 on any finding.
"""
import concurrent.futures
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

NOISE = re.compile(r"^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$")


def tidy_binary():
    """clang-tidy 16 or newer ($SRIOVD_CLANG_TIDY to choose): 14, Debian 12's default, cannot
    parse the C++20 capture of structured bindings the code uses."""
    chosen = os.environ.get("SRIOVD_CLANG_TIDY")
    if chosen:
        return chosen
    for v in (19, 18, 17, 16):
        if shutil.which("clang-tidy-%d" % v):
            return "clang-tidy-%d" % v
    sys.exit("lint: needs clang-tidy 16 or newer (scripts/install-deps.sh --test installs clang-tidy-16)")


def compile_args(entry):
    args = entry.get("arguments") or shlex.split(entry["command"])
    if os.path.basename(args[0]) == "ccache":
        args = args[1:]
    return args


def preprocess_args(args, source):
    """The unit's command, made to print its preprocessed text without line markers."""
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a in ("-o", "-MF", "-MT", "-MQ"):
            skip = True
            continue
        if a in ("-c", "-MD", "-MMD") or a == source:
            continue
        out.append(a)
    return out + ["-E", "-P", source, "-o", "-"]


def key_of(entry, root, build, header_filter, version, config):
    source = entry["file"]
    args = compile_args(entry)
    pre = subprocess.run(preprocess_args(args, source), cwd=entry["directory"],
                         capture_output=True, check=True).stdout
    h = hashlib.sha256()
    for part in (version, config, header_filter.replace(build, "BUILD"),
                 " ".join(a for a in args if not a.startswith(("-o", "-M")))
                 .replace(build, "BUILD").replace(root, "ROOT"),
                 os.path.relpath(source, root)):
        h.update(part.encode() + b"\0")
    h.update(pre.replace(build.encode(), b"BUILD").replace(root.encode(), b"ROOT"))
    return h.hexdigest()


def main():
    build, header_filter, jobs, files = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    root = os.path.realpath(os.getcwd())
    build = os.path.realpath(build)
    entries = {os.path.realpath(e["file"]): e
               for e in json.load(open(os.path.join(build, "compile_commands.json")))}
    cache = os.environ.get("SRIOVD_TIDY_CACHE",
                           os.path.join(os.path.expanduser("~"), ".cache", "sriovd-tidy"))
    use_cache = cache != "off"
    if use_cache:
        os.makedirs(cache, exist_ok=True)
    tidy = tidy_binary()
    version = subprocess.run([tidy, "--version"], capture_output=True, text=True,
                             check=True).stdout
    config = open(os.path.join(root, ".clang-tidy")).read()

    def one(path):
        entry = entries[os.path.realpath(path)]
        key = None
        if use_cache:
            try:
                key = key_of(entry, root, build, header_filter, version, config)
            except subprocess.CalledProcessError as e:
                return path, 1, "tidy: cannot preprocess %s: %s" % (path, e.stderr.decode()[-2000:]), False
            if os.path.exists(os.path.join(cache, key)):
                return path, 0, "", True
        r = subprocess.run([tidy, "-p", build, "--quiet", "--header-filter=" + header_filter,
                            "--warnings-as-errors=*", path], capture_output=True, text=True)
        text = "\n".join(line for line in (r.stdout + r.stderr).splitlines()
                         if not NOISE.match(line))
        if r.returncode == 0 and key:
            tmp = os.path.join(cache, key + ".tmp%d" % os.getpid())
            open(tmp, "w").close()
            os.replace(tmp, os.path.join(cache, key))
        return path, r.returncode, text, False

    status, remembered = 0, 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for path, rc, text, hit in pool.map(one, files):
            remembered += hit
            if text.strip():
                print(text, flush=True)
            if rc != 0:
                status = 1
    print("lint: clang-tidy: %d of %d units remembered clean" % (remembered, len(files)))
    return status


if __name__ == "__main__":
    sys.exit(main())
