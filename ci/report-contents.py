#!/usr/bin/env python3
"""Check a rendered report (the DOM Chromium dumped) against the run directory it was made from.

For every experiment directory (one with summary.md), its section of the page must show every
PNG figure in that directory (an <img alt="FILE">) and as many tables as summary.md has pipe
tables. Exits 1 naming what is missing.

Usage: report-contents.py DOM_FILE RUN_DIR
"""
import os, re, sys


def sections(dom):
    out = {}
    for m in re.finditer(r'<section id="([^"]+)">(.*?)</section>', dom, re.S):
        out[m.group(1)] = m.group(2)
    return out


def md_tables(text):
    n, inside = 0, False
    for line in text.splitlines():
        is_row = line.lstrip().startswith("|")
        if is_row and not inside:
            n += 1
        inside = is_row
    return n


def check(dom, run_dir):
    problems = []
    secs = sections(dom)
    exps = sorted(d for d in os.listdir(run_dir) if os.path.isfile(os.path.join(run_dir, d, "summary.md")))
    if not exps:
        problems.append(f"no experiment in {run_dir}")
    for e in exps:
        d = os.path.join(run_dir, e)
        sec = secs.get(e)
        if sec is None:
            problems.append(f"{e}: no section in the page")
            continue
        alts = set(re.findall(r'<img[^>]*\balt="([^"]+)"', sec))
        for f in sorted(os.listdir(d)):
            if f.endswith(".png") and f not in alts:
                problems.append(f"{e}: figure {f} is not on the page")
        want = md_tables(open(os.path.join(d, "summary.md"), encoding="utf-8").read())
        got = len(re.findall(r"<table>", sec))
        if got < want:
            problems.append(f"{e}: {got} tables on the page, summary.md has {want}")
    return problems


if __name__ == "__main__":
    dom = open(sys.argv[1], encoding="utf-8").read()
    problems = check(dom, sys.argv[2])
    for p in problems:
        print("report: " + p, file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"report contents: every figure and table of {sys.argv[2]} is on the page")
