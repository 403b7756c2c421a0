#!/usr/bin/env python3
"""st_check.py FILE - loads a safetensors FILE the way a PyTorch user would and prints,
for each tensor, a line "name<TAB>shape<TAB>sum" (shape as "d0,d1,..", sum in float64).

It uses `safetensors.torch.load_file` when the safetensors package is importable (the
cross-implementation check of ebm's writer), else a minimal reader written here from the
format description (8-byte little-endian header length, JSON header, raw data), which
checks offsets as strictly as the reference: contiguous from 0 to the end of the data.
The first line says which loader ran.  Exits non-zero, with a message, on any failure."""
import json
import struct
import sys

DTYPES = {"F32": "<f4", "F64": "<f8", "I32": "<i4", "I64": "<i8", "U8": "u1",
          "F16": "<f2", "I16": "<i2", "I8": "i1", "BOOL": "?"}


def load_reference(path):
    import safetensors
    from safetensors.torch import load_file
    tensors = load_file(path)
    return "safetensors %s" % safetensors.__version__, {
        k: (list(v.shape), float(v.double().sum())) for k, v in tensors.items()}


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    dup = {k for k in keys if keys.count(k) > 1}
    if dup:
        raise ValueError("duplicate keys in the header: %s" % sorted(dup))
    return dict(pairs)


def load_minimal(path):
    import numpy as np
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError("file shorter than 8 bytes")
    (n,) = struct.unpack("<Q", raw[:8])
    if n == 0 or n > 100 << 20 or n > len(raw) - 8:
        raise ValueError("bad header length %d for a %d-byte file" % (n, len(raw)))
    header = json.loads(raw[8:8 + n].decode("utf-8"), object_pairs_hook=no_duplicates)
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ValueError("__metadata__ is not a map of strings")
    out, pos = {}, 0
    for name, info in sorted(header.items(), key=lambda kv: tuple(kv[1]["data_offsets"])):
        begin, end = info["data_offsets"]
        dt = np.dtype(DTYPES[info["dtype"]])
        shape = [int(d) for d in info["shape"]]
        count = int(np.prod(shape)) if shape else 1
        if begin != pos or end - begin != count * dt.itemsize:
            raise ValueError("tensor %r: data_offsets %r do not follow %d or do not fit shape %r of %s"
                             % (name, info["data_offsets"], pos, shape, info["dtype"]))
        pos = end
        arr = np.frombuffer(data, dtype=dt, count=count, offset=begin).reshape(shape)
        out[name] = (shape, float(arr.astype(np.float64).sum()))
    if pos != len(data):
        raise ValueError("tensors cover %d bytes of %d bytes of data" % (pos, len(data)))
    return "minimal (json + numpy; safetensors package not importable)", out


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: st_check.py FILE")
    path = sys.argv[1]
    try:
        import safetensors.torch  # noqa: F401
        loader = load_reference
    except ImportError:
        loader = load_minimal
    try:
        name, tensors = loader(path)
    except Exception as e:  # any failure to load is the answer we report
        sys.exit("st_check.py: %s: cannot load: %s: %s" % (path, type(e).__name__, e))
    print("loader: %s" % name)
    for k in sorted(tensors):
        shape, total = tensors[k]
        print("%s\t%s\t%r" % (k, ",".join(str(d) for d in shape), total))


if __name__ == "__main__":
    main()
