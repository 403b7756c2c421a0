#!/usr/bin/python3
"""Writes the PyTorch reference fixtures that tests/test_torch_parity.c checks ebm against.

For the peer's energy network (../shared/bench/torch_peer.py, energy_net(): the "cnn-small"
spec of ebm) with PyTorch's default init from a fixed seed, and a batch of 8 images in
[-1, 1], it stores in safetensors (written by hand: Debian has no safetensors package):
  "0.weight", "0.bias", ... "11.bias"   the weights, torch layouts (what ebm loads)
  "input"          (8, 1, 28, 28)        NCHW; for one channel this is also ebm's NHWC
  "energy"         (8,)                  E = -f(x)             (1 output)
                                         E = -logsumexp f(x)   (10 outputs, conditional)
  "dEdx"           (8, 1, 28, 28)        gradient of sum(E) w.r.t. the input
  "grad.<name>"                          gradient of sum(E) w.r.t. each parameter
and, for the conditional net, "labels" (I32, 8), "energy_y" = -f(x)[y] and "dEdx_y"
(parameter gradients of E(x, y) run through the same code as those of E(x), so they are
left out to keep the file small).

The weights and inputs are rounded to float32 first; the references are then computed in
float64 from those float32 values, so the comparison measures ebm's rounding only.

Usage: /usr/bin/python3 scripts/make_torch_fixture.py [outdir]   (default tests/fixtures)
"""
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn


class Swish(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(x)


def energy_net(h=32, out=1):
    # Identical to torch_peer.energy_net (with `out` outputs instead of 1).
    return nn.Sequential(
        nn.Conv2d(1, h // 2, 5, stride=2, padding=4), Swish(),
        nn.Conv2d(h // 2, h, 3, stride=2, padding=1), Swish(),
        nn.Conv2d(h, h * 2, 3, stride=2, padding=1), Swish(),
        nn.Conv2d(h * 2, h * 2, 3, stride=2, padding=1), Swish(),
        nn.Flatten(), nn.Linear(h * 2 * 4, h * 2), Swish(), nn.Linear(h * 2, out))


def write_safetensors(path, tensors, meta):
    """tensors: list of (name, numpy array of float32 or int32)."""
    header, blobs, off = {}, [], 0
    for name, a in tensors:
        a = np.ascontiguousarray(a)
        dtype = {np.dtype(np.float32): "F32", np.dtype(np.int32): "I32"}[a.dtype]
        raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    header["__metadata__"] = meta
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)  # the format allows trailing spaces; keeps the data aligned
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def grads_of(model, x, energy_fn):
    """E (B,), dE/dx and parameter gradients of sum(E), all in float64."""
    model.zero_grad(set_to_none=True)
    xx = x.clone().requires_grad_(True)
    E = energy_fn(model(xx))
    E.sum().backward()
    return E.detach(), xx.grad.detach(), [(n, p.grad.detach()) for n, p in model.named_parameters()]


def f32(t):
    return t.detach().to(torch.float32).numpy()


def make(path, out, seed):
    torch.manual_seed(seed)
    model = energy_net(out=out)                     # PyTorch's default init, float32
    x = torch.rand(8, 1, 28, 28) * 2 - 1             # float32 in [-1, 1]
    model = model.double()                           # exact copies of the float32 values
    x = x.double()
    tensors = [(n, f32(p)) for n, p in model.named_parameters()]
    tensors.append(("input", f32(x)))
    if out == 1:
        E, dx, g = grads_of(model, x, lambda f: -f[:, 0])
    else:
        E, dx, g = grads_of(model, x, lambda f: -torch.logsumexp(f, dim=1))
    tensors += [("energy", f32(E)), ("dEdx", f32(dx))] + [("grad." + n, f32(t)) for n, t in g]
    if out > 1:
        y = torch.tensor([3, 0, 9, 1, 7, 7, 2, 5])
        Ey, dxy, _ = grads_of(model, x, lambda f: -f.gather(1, y[:, None])[:, 0])
        tensors += [("labels", y.to(torch.int32).numpy()), ("energy_y", f32(Ey)), ("dEdx_y", f32(dxy))]
    meta = {"spec": "cnn-small" if out == 1 else "cnn-small-cond", "torch": torch.__version__,
            "seed": str(seed), "made_by": "scripts/make_torch_fixture.py"}
    write_safetensors(path, tensors, meta)
    print(f"wrote {path} ({os.path.getsize(path)} bytes, {len(tensors)} tensors)")


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")
    os.makedirs(outdir, exist_ok=True)
    make(os.path.join(outdir, "cnn_small_torch.safetensors"), 1, seed=7)
    make(os.path.join(outdir, "cnn_small_cond_torch.safetensors"), 10, seed=8)


if __name__ == "__main__":
    main()
