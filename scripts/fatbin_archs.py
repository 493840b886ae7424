#!/usr/bin/env python3
"""fatbin_archs.py BINARY: the GPU code a CUDA program holds, as `cuobjdump --list-elf/--list-ptx`
would name it, for machines without cuobjdump (it ships with the full toolkit, not with nvcc).

Reads the ELF section .nv_fatbin (objcopy extracts it): one fatbin per .cu object, each a header
(magic 0xBA55ED50, its size, the entries' size) and entries (kind 1 PTX, 2 ELF/SASS; the
architecture at byte 28 of the entry header). Prints one line per kind and architecture,
"sm_90" for SASS and "compute_90" for PTX, sorted, with no repeats; exit 1 when there is none."""
import struct
import subprocess
import sys
import tempfile


def fatbin_archs(blob):
    archs, pos = set(), 0
    while pos + 16 <= len(blob):
        magic, _, header, size = struct.unpack_from("<IHHQ", blob, pos)
        if magic != 0xBA55ED50:
            pos += 8  # objects' fatbins are 8-byte aligned, zero-padded between
            continue
        entry, end = pos + header, pos + header + size
        while entry < end:
            kind, _, eheader, esize = struct.unpack_from("<HHIQ", blob, entry)
            arch = struct.unpack_from("<I", blob, entry + 28)[0]
            archs.add(("compute_%d" if kind == 1 else "sm_%d") % arch)
            entry += eheader + esize
        pos = end
    return sorted(archs)


def main():
    with tempfile.NamedTemporaryFile() as out:
        subprocess.run(["objcopy", "-O", "binary", "--only-section=.nv_fatbin", sys.argv[1], out.name],
                       check=True)
        archs = fatbin_archs(open(out.name, "rb").read())
    print("\n".join(archs))
    return 0 if archs else 1


if __name__ == "__main__":
    sys.exit(main())
