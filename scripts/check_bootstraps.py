"""Checks the Lambda bootstraps a build produced: one per template function,
for the intended CPU, and with no SQLite (the `embedded` adapter set) in it.

Run after every build of what ships (scripts/sam-build, scripts/build-lambdas,
scripts/bench). Release bootstraps are stripped, so there are no `sqlite3_`
symbols to look for; the bytes are searched instead, for what any SQLite build
carries: the database header magic, its API names in messages, and rusqlite.
Prints each bootstrap's size and sha256, so two builds' bytes can be compared.

usage: python scripts/check_bootstraps.py sam|cargo-lambda DIR x86_64|arm64
  sam           DIR/<LogicalId>/bootstrap   (.aws-sam/build)
  cargo-lambda  DIR/<binary>/bootstrap      (target/lambda)
"""
import hashlib
import os
import sys

from template_functions import functions, load_template

ELF_MACHINE = {"x86_64": 0x3E, "arm64": 0xB7}
SQLITE_MARKERS = [b"SQLite format 3", b"sqlite3_", b"rusqlite"]


def problems(path, arch):
    if not os.path.isfile(path):
        return ["missing"]
    data = open(path, "rb").read()
    found = []
    if data[:4] != b"\x7fELF":
        found.append("not an ELF file")
    elif int.from_bytes(data[18:20], "little") != ELF_MACHINE[arch]:
        found.append(f"not built for {arch} (ELF machine {int.from_bytes(data[18:20], 'little'):#x})")
    found += [f"contains {m.decode()!r} (SQLite linked in)" for m in SQLITE_MARKERS if m in data]
    return found


def main(layout, directory, arch):
    failed = 0
    for name, binary, _ in functions(load_template()):
        path = os.path.join(directory, name if layout == "sam" else binary, "bootstrap")
        bad = problems(path, arch)
        if bad:
            failed += 1
            print(f"FAIL {path}: {'; '.join(bad)}")
        else:
            data = open(path, "rb").read()
            print(f"ok   {path}  {len(data):>9} bytes  sha256 {hashlib.sha256(data).hexdigest()[:16]}")
    if failed:
        sys.exit(f"{failed} bootstrap(s) failed the check")


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("sam", "cargo-lambda") or sys.argv[3] not in ELF_MACHINE:
        sys.exit(__doc__)
    main(*sys.argv[1:])
