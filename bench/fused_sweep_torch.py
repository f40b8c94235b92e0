"""PyTorch CPU reference for bench/fused-sweep.ts: trains N ResNet-18 classifiers (the model of
train_step_torch.py, seeds 1..N, each its own random data) one after another for S Adam steps
each, as a sweep runs its trials; prints the timed trial-steps per second as JSON.

Usage: python3 bench/fused_sweep_torch.py --trials 8 --steps 10 --width 0.125 --size 32 --batch 4 --threads 1 [--small-stem]
"""
import argparse
import json
import time

import torch
import torch.nn as nn

from train_step_torch import resnet18


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--trials", type=int, default=4)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--width", type=float, default=0.125)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--small-stem", action="store_true")
    p.add_argument("--warmup-seconds", type=float, default=0.0)
    # Timed rounds (every trial trains --steps steps per round) repeat until this long has passed.
    p.add_argument("--seconds", type=float, default=0.0)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    loss_fn = nn.CrossEntropyLoss()

    def setup(seed, steps):
        torch.manual_seed(seed)
        model = resnet18(a.width, 6, a.small_stem)
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-5)
        x = torch.randn(steps * a.batch, 1, a.size, a.size)
        y = (torch.arange(steps * a.batch) + seed) % 6
        return model, opt, x, y

    def train(model, opt, x, y, steps):
        for s in range(steps):
            sl = slice(s * a.batch, (s + 1) * a.batch)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[sl]), y[sl])
            loss.backward()
            opt.step()
        loss.item()

    # Warm-up (allocator, kernels), as long as the TF.js side's.
    warm_start = time.perf_counter()
    train(*setup(0, 2), 2)
    while time.perf_counter() - warm_start < a.warmup_seconds:
        train(*setup(0, 2), 2)
    # Models, optimisers and data are made before the clock starts, as in fused-sweep-worker.ts.
    trials = [setup(seed, a.steps) for seed in range(1, a.trials + 1)]
    started = time.perf_counter()
    rounds = 0
    while True:
        for t in trials:
            train(*t, a.steps)
        rounds += 1
        if time.perf_counter() - started >= a.seconds:
            break
    seconds = time.perf_counter() - started
    trial_steps = rounds * a.trials * a.steps
    print(json.dumps({"trialSteps": trial_steps, "seconds": seconds, "perSecond": trial_steps / seconds}))


if __name__ == "__main__":
    main()
