"""How the large files of this corpus were made small (run from this folder on the original
files; see README.md for the sources).

Thinning keeps the file's own lines byte for byte: every header line, the first and last record
of every (cycle, step) run (so every counter's final value per step, hence every per-cycle
capacity, is kept) and every k-th record between. Cutting keeps the first records up to the
end of a given cycle.

    python trim.py thin ORIGINAL OUT --header N --sep , --keys cycle_index,step_index --every 8
    python trim.py cut ORIGINAL OUT --header 1 --sep , --cycle "Cycle Count / 1" --last 20
    python trim.py rows ORIGINAL OUT --header 1 --like THINNED --like-header 7
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _split(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def thin(src: Path, out: Path, header: int, sep: str, keys: list[str], every: int) -> list[int]:
    lines = _split(src)
    names = [c.strip() for c in lines[header - 1].decode("latin-1").split(sep)]
    idx = [names.index(k) for k in keys]
    body = lines[header:]
    fields = [ln.decode("latin-1").split(sep) for ln in body]
    key = [tuple(f[i] if i < len(f) else "" for i in idx) for f in fields]
    kept = []
    for i in range(len(body)):
        first = i == 0 or key[i] != key[i - 1]
        last = i == len(body) - 1 or key[i] != key[i + 1]
        if first or last or i % every == 0:
            kept.append(i)
    out.write_bytes(b"".join(lines[:header] + [body[i] for i in kept]))
    return kept


def cut(src: Path, out: Path, header: int, sep: str, cycle: str, last: int) -> None:
    lines = _split(src)
    names = [c.strip() for c in lines[header - 1].decode("latin-1").split(sep)]
    j = names.index(cycle)
    keep = []
    for ln in lines[header:]:
        if int(float(ln.decode("latin-1").split(sep)[j])) > last:
            break
        keep.append(ln)
    out.write_bytes(b"".join(lines[:header] + keep))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["thin", "cut", "rows"])
    ap.add_argument("src", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--header", type=int, default=1)
    ap.add_argument("--sep", default=",")
    ap.add_argument("--keys", default="")
    ap.add_argument("--every", type=int, default=8)
    ap.add_argument("--cycle", default="")
    ap.add_argument("--last", type=int, default=0)
    ap.add_argument("--like", type=Path, help="thinned file whose record order to follow")
    ap.add_argument("--like-original", type=Path)
    ap.add_argument("--like-header", type=int, default=1)
    a = ap.parse_args()
    sep = "\t" if a.sep == "tab" else a.sep
    if a.mode == "thin":
        thin(a.src, a.out, a.header, sep, a.keys.split(","), a.every)
    elif a.mode == "cut":
        cut(a.src, a.out, a.header, sep, a.cycle, a.last)
    else:  # the same records as a thinned twin (a file and its BDF conversion)
        keys = a.keys.split(",")
        kept = thin(a.like_original, Path("/dev/null"), a.like_header, sep, keys, a.every)
        lines = _split(a.src)
        body = lines[a.header :]
        a.out.write_bytes(b"".join(lines[: a.header] + [body[i] for i in kept]))


if __name__ == "__main__":
    main()
