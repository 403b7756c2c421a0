#!/usr/bin/python3
"""PyTorch CPU throughput of one Langevin step of the peer's energy network, timed the way
bench/langevin_cpu.c times ebm: per step, medians over many steps.

One step is the peer's (../shared/bench/torch_peer.py, langevin()): noise + clamp, E = -f(x),
autograd gradient w.r.t. x with parameters frozen, clipped gradient step + clamp.

Output: `torch batch B threads T steps S step_ms M image_steps_per_s R min_step_ms m` per
configuration (median, then the fastest step).
Usage: /usr/bin/python3 bench/torch_cpu_langevin.py [--batches 128 1024] [--threads 1 2] [--seconds 3]
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn


class Swish(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(x)


def energy_net(h=32):
    # torch_peer.energy_net, verbatim.
    return nn.Sequential(
        nn.Conv2d(1, h // 2, 5, stride=2, padding=4), Swish(),
        nn.Conv2d(h // 2, h, 3, stride=2, padding=1), Swish(),
        nn.Conv2d(h, h * 2, 3, stride=2, padding=1), Swish(),
        nn.Conv2d(h * 2, h * 2, 3, stride=2, padding=1), Swish(),
        nn.Flatten(), nn.Linear(h * 2 * 4, h * 2), Swish(), nn.Linear(h * 2, 1))


def step(model, x, step_size=10.0, noise=0.005):
    with torch.no_grad():
        x.add_(torch.randn_like(x) * noise).clamp_(-1.0, 1.0)
    out = -model(x)
    g, = torch.autograd.grad(out.sum(), x)
    with torch.no_grad():
        x.add_(-step_size * g.clamp(-0.03, 0.03)).clamp_(-1.0, 1.0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, nargs="+", default=[128, 1024])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--seconds", type=float, default=3.0)
    a = ap.parse_args()
    torch.manual_seed(0)
    model = energy_net()
    for p in model.parameters():
        p.requires_grad_(False)
    print(f"# torch {torch.__version__}", flush=True)
    for bs in a.batches:
        for t in a.threads:
            torch.set_num_threads(t)
            x = (torch.rand(bs, 1, 28, 28) * 2 - 1).requires_grad_(True)
            for _ in range(3):
                step(model, x)
            times = []
            end = time.perf_counter() + a.seconds
            while len(times) < 7 or time.perf_counter() < end:
                t0 = time.perf_counter()
                step(model, x)
                times.append(time.perf_counter() - t0)
            m = statistics.median(times)
            print(f"torch batch {bs} threads {t} steps {len(times)} step_ms {m * 1e3:.3f} "
                  f"image_steps_per_s {bs / m:.0f} min_step_ms {min(times) * 1e3:.3f}", flush=True)


if __name__ == "__main__":
    main()
