"""PyTorch CPU reference for bench/train-step.ts: ResNet-18 (torchvision layout, 1 input
channel, 6 classes) forward and Adam train-step times on a fixed random batch, as JSON.

Needs Debian's python3-torch (system Python, /usr/bin/python3):
  flock /tmp/angle-lab-apt.lock apt-get install -y -o DPkg::Lock::Timeout=600 python3-torch
Usage: python3 bench/train_step_torch.py --width 1 --batch 4 --size 128 --reps 5 --threads 2 [--small-stem]
"""
import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn as nn


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + (x if self.down is None else self.down(x)))


def resnet18(width, classes, small_stem=False):
    c = lambda n: max(1, round(n * width))
    if small_stem:  # 3x3 stride-1 stem, no max-pool: the lab's small-input models (@lab/ranking-models smallInputStem)
        layers = [nn.Conv2d(1, c(64), 3, 1, 1, bias=False), nn.BatchNorm2d(c(64)), nn.ReLU(inplace=True)]
    else:
        layers = [nn.Conv2d(1, c(64), 7, 2, 3, bias=False), nn.BatchNorm2d(c(64)), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)]
    cin = c(64)
    for stage, filters in enumerate([64, 128, 256, 512]):
        for block in range(2):
            stride = 2 if stage > 0 and block == 0 else 1
            layers.append(BasicBlock(cin, c(filters), stride))
            cin = c(filters)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes)]
    return nn.Sequential(*layers)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    # Warm-up also lasts at least this long (the TF.js side needs seconds of steps before V8's JIT
    # settles; both sides get the same rule).
    p.add_argument("--warmup-seconds", type=float, default=0.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--small-stem", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = resnet18(a.width, 6, a.small_stem)
    model.train()
    x = torch.randn(a.batch, 1, a.size, a.size)
    labels = torch.arange(a.batch) % 6
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    def forward():
        with torch.no_grad():
            model(x)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), labels)
        loss.backward()
        opt.step()
        return loss.item()

    def timed(fn):
        start, done = time.perf_counter(), 0
        while done < a.warmup or time.perf_counter() - start < a.warmup_seconds:
            fn()
            done += 1
        wall, cpu = [], []
        for _ in range(a.reps):
            t, c = time.perf_counter(), time.process_time()
            fn()
            wall.append((time.perf_counter() - t) * 1000)
            cpu.append((time.process_time() - c) * 1000)  # all threads of the process
        return wall, cpu

    fwd, fwd_cpu = timed(forward)
    stp, stp_cpu = timed(step)
    print(json.dumps({
        "torch": torch.__version__,
        "threads": a.threads,
        "forwardMs": fwd,
        "stepMs": stp,
        "forwardCpuMs": fwd_cpu,
        "stepCpuMs": stp_cpu,
        "forwardMedianMs": statistics.median(fwd),
        "stepMedianMs": statistics.median(stp),
        "peakRssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
