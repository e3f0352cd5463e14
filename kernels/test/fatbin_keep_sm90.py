"""Shrinks a CUDA library for transport to an sm_90 device: in every fatbin container of its .nv_fatbin section
that holds an sm_90 cubin, the cubins of other architectures are dropped (the container is compacted in place,
its size field updated, the freed tail zeroed, so addresses stay valid). Used only to carry ONNX Runtime's CUDA
execution provider (libonnxruntime_providers_cuda.so, ~230 MB) to the H100 in fewer device calls.

  python3 kernels/test/fatbin_keep_sm90.py IN.so OUT.so
"""
import struct
import subprocess
import sys


def main(src, dst):
    data = bytearray(open(src, "rb").read())
    off = size = None
    for line in subprocess.check_output(["readelf", "-S", "-W", src]).decode().splitlines():
        if ".nv_fatbin" in line:
            parts = line.split("]")[1].split()
            off, size = int(parts[3], 16), int(parts[4], 16)
    if off is None:
        raise SystemExit("no .nv_fatbin section")
    p, end, kept, removed = off, off + size, 0, 0
    while p < end:
        magic, _ver, hsz, fsz = struct.unpack_from("<IHHQ", data, p)
        if magic != 0xBA55ED50:
            p += 8
            continue
        q, qe, ents = p + hsz, p + hsz + fsz, []
        while q < qe:
            kind, _ev, ehs, psz = struct.unpack_from("<HHIQ", data, q)
            if ehs == 0:
                break
            sm = struct.unpack_from("<I", data, q + 28)[0]
            ents.append((q, ehs + psz, kind, sm))
            q += ehs + psz
        if any(k == 2 and sm == 90 for _, _, k, sm in ents):
            keep = [e for e in ents if not (e[2] == 2 and e[3] != 90)]
            buf = b"".join(bytes(data[a:a + n]) for a, n, _, _ in keep)
            d0 = p + hsz
            data[d0:d0 + len(buf)] = buf
            data[d0 + len(buf):qe] = bytes(qe - d0 - len(buf))
            struct.pack_into("<Q", data, p + 8, len(buf))
            kept += len(keep)
            removed += len(ents) - len(keep)
        p = qe
    open(dst, "wb").write(data)
    print(f"kept {kept} entries, dropped {removed}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
