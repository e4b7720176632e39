"""Unpack a golang.org/toolchain module zip into DEST.

The zip's entries are golang.org/toolchain@v0.0.1-go1.X.Y.linux-ARCH/...;
that prefix is dropped, so DEST becomes the GOROOT. Modes come from the
entries (zipfile alone drops them, and bin/go must stay executable).
Entries that would land outside DEST are refused.
"""
import os
import sys
import zipfile


def main(archive, dest):
    dest = os.path.realpath(dest)
    with zipfile.ZipFile(archive) as z:
        names = z.namelist()
        prefixes = {n.split("/", 2)[0] + "/" + n.split("/", 2)[1] + "/" for n in names if n.count("/") >= 2}
        if len(prefixes) != 1 or not next(iter(prefixes)).startswith("golang.org/toolchain@"):
            sys.exit("%s: not a golang.org/toolchain module zip (top directories: %s)" % (archive, sorted(prefixes)[:3]))
        prefix = prefixes.pop()
        for info in z.infolist():
            rel = info.filename[len(prefix):]
            if not rel:
                continue
            target = os.path.realpath(os.path.join(dest, rel))
            if not target.startswith(dest + os.sep):
                sys.exit("%s: entry %s would land outside %s" % (archive, info.filename, dest))
            if info.is_dir():
                os.makedirs(target, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with z.open(info) as src, open(target, "wb") as out:
                while True:
                    chunk = src.read(1 << 20)
                    if not chunk:
                        break
                    out.write(chunk)
            mode = (info.external_attr >> 16) & 0o777
            os.chmod(target, mode or 0o644)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: unzip_toolchain.py ARCHIVE DEST")
    main(sys.argv[1], sys.argv[2])
