"""The tutorial's workload in plain PyTorch, the peer of bench/versus_pytorch.ts.

A hand-written loop that mirrors epochStream (shuffled mini-batches, Adam, the
sample-weighted mean loss read once per epoch) and, in "full" mode, the
section-8 pipeline's per-epoch work: validation loss, parameter L2 norm, EMA
of val_loss and early-stop bookkeeping. 2 threads.

It also trains the larger workloads of bench/versus_pytorch.ts: "wide256" and
"wide1024" (784→H→H→10, relu, softmax cross-entropy, Adam 1e-3, 6,000 rows),
"cnn" (28×28×1 → conv 3×3×16 → max-pool 2 → conv 3×3×32 → dense 10, 2,048 rows),
and the tfjs-path models of bench/tfjs_models.ts: "dropout" (784→512 relu→
dropout 0.2→512 relu→dropout 0.2→10) and "batchnorm" (784→256 relu→batch
norm→256 relu→batch norm→10, tfjs's epsilon 1e-3 and momentum 0.99, which is
PyTorch's 0.01), 6,000 rows.

It reads commands on stdin, one per line: "<batch> <mode> <epochs>", and
answers each with one JSON line of per-epoch times in ms, so the TypeScript
side can interleave rounds without paying torch's start-up each time.

Run: python3 bench/reference_pytorch.py DATA_DIR   (Debian: apt-get install python3-torch)
"""
import csv
import json
import sys
import time

import torch
from torch import nn

FEATURES = ["longitude", "latitude", "housing_median_age", "total_rooms",
            "total_bedrooms", "population", "households", "median_income"]
LABEL = "median_house_value"


def load(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    x = torch.tensor([[float(r[c]) for c in FEATURES] for r in rows], dtype=torch.float32)
    y = torch.tensor([[float(r[LABEL])] for r in rows], dtype=torch.float32) / 100_000.0
    return x, y


LARGE = {"wide256": 6000, "wide1024": 6000, "cnn": 2048, "dropout": 6000, "batchnorm": 6000, "mnist_cnn": 5120,
         "embedding": 4096, "lstm": 2048}
QUICK_ROWS = {"mnist_cnn": 1024, "embedding": 1024, "lstm": 512}


class Embedding(nn.Module):
    """Keras's IMDB classifier: embedding 10,000×16, the mean over tokens, dense 16 relu, dense 1 sigmoid."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10000, 16)
        self.head = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 1), nn.Sigmoid())

    def forward(self, x):
        return self.head(self.embed(x).mean(dim=1))


class Lstm(nn.Module):
    """LSTM(32) over 50 steps of 8 features, the last output, dense 1."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(8, 32, batch_first=True)
        self.head = nn.Linear(32, 1)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def large_epochs(mode, batch, epochs, models, quick=False):
    """Per-epoch ms of a larger workload: random data, one model per (mode, batch) trained on across rounds."""
    key = (batch, mode)
    loss_fn = nn.CrossEntropyLoss()
    if mode == "embedding":
        loss_fn = nn.BCELoss()
    elif mode == "lstm":
        loss_fn = nn.MSELoss()
    if key not in models:
        rows = QUICK_ROWS.get(mode, LARGE[mode]) if quick else LARGE[mode]
        y = torch.randint(0, 10, (rows,))
        if mode == "mnist_cnn":  # the tfjs tutorial's CNN; softmax + categorical cross-entropy = CrossEntropyLoss
            model = nn.Sequential(nn.Conv2d(1, 8, 5), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Conv2d(8, 16, 5), nn.ReLU(),
                                  nn.MaxPool2d(2, 2), nn.Flatten(), nn.Linear(16 * 4 * 4, 10))
            x = torch.rand(rows, 1, 28, 28)
        elif mode == "embedding":
            model = Embedding()
            x = torch.randint(0, 10000, (rows, 256))
            y = torch.randint(0, 2, (rows, 1)).float()
        elif mode == "lstm":
            model = Lstm()
            x = torch.randn(rows, 50, 8)
            y = torch.randn(rows, 1)
        elif mode == "cnn":
            model = nn.Sequential(nn.Conv2d(1, 16, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3), nn.ReLU(),
                                  nn.Flatten(), nn.Linear(32 * 11 * 11, 10))
            x = torch.randn(rows, 1, 28, 28)
        elif mode == "dropout":
            model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Dropout(0.2), nn.Linear(512, 512), nn.ReLU(),
                                  nn.Dropout(0.2), nn.Linear(512, 10))
            x = torch.randn(rows, 784)
        elif mode == "batchnorm":
            model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.BatchNorm1d(256, eps=1e-3, momentum=0.01),
                                  nn.Linear(256, 256), nn.ReLU(), nn.BatchNorm1d(256, eps=1e-3, momentum=0.01),
                                  nn.Linear(256, 10))
            x = torch.randn(rows, 784)
        else:
            h = int(mode[4:])
            model = nn.Sequential(nn.Linear(784, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 10))
            x = torch.randn(rows, 784)
        models[key] = {"model": model, "opt": torch.optim.Adam(model.parameters(), lr=1e-3), "x": x, "y": y,
                       "gen": torch.Generator().manual_seed(1)}
    state = models[key]
    model, opt, x, y, gen = state["model"], state["opt"], state["x"], state["y"], state["gen"]
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(x.shape[0], generator=gen)
        total = torch.zeros(())
        for b in range(0, x.shape[0], batch):
            idx = order[b:b + batch]
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            total += loss.detach() * idx.shape[0]
        assert (total / x.shape[0]).item() == (total / x.shape[0]).item()
        times.append((time.perf_counter() - start) * 1000)
    return times


def main():
    torch.set_num_threads(2)
    torch.manual_seed(0)
    data_dir = sys.argv[1]
    x, y = load(f"{data_dir}/california_housing_train.csv")
    xv, yv = load(f"{data_dir}/california_housing_test.csv")
    mean = x.mean(dim=0, keepdim=True)
    std = x.std(dim=0, keepdim=True).clamp_min(1e-6)
    x, xv = (x - mean) / std, (xv - mean) / std
    models = {}
    torch.ones(64, 64) @ torch.ones(64, 64)  # loads the BLAS, so the maps below show which
    with open("/proc/self/maps") as f:
        maps = f.read()
    blas = "openblas" if "openblas" in maps else "reference BLAS" if "libblas" in maps else "unknown"
    print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads(), "blas": blas}),
          flush=True)
    for line in sys.stdin:
        batch, mode, epochs = line.split()
        batch, epochs = int(batch), int(epochs)
        if mode in LARGE:
            print(json.dumps({"times": large_epochs(mode, batch, epochs, models, "--quick" in sys.argv)}), flush=True)
            continue
        key = (batch, mode)
        if key not in models:  # one model per arm, trained on across rounds like the stream arms
            model = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 1))
            models[key] = {"model": model, "opt": torch.optim.Adam(model.parameters(), lr=1e-2),
                           "gen": torch.Generator().manual_seed(1), "m": 0.0, "t": 0, "best": float("inf"), "stale": 0}
        state = models[key]
        model, opt, gen = state["model"], state["opt"], state["gen"]
        loss_fn = nn.MSELoss()
        times = []
        for _ in range(epochs):
            start = time.perf_counter()
            model.train()
            order = torch.randperm(x.shape[0], generator=gen)
            total = torch.zeros(())
            for b in range(0, x.shape[0], batch):
                idx = order[b:b + batch]
                xb, yb = x[idx], y[idx]
                opt.zero_grad()
                loss = loss_fn(model(xb), yb)
                loss.backward()
                opt.step()
                total += loss.detach() * xb.shape[0]
            train_loss = (total / x.shape[0]).item()
            if mode == "full":
                model.eval()
                with torch.no_grad():
                    val = loss_fn(model(xv), yv).item()
                    norm = nn.utils.parameters_to_vector(model.parameters()).norm().item()
                d = 2 ** (-1 / 10)
                state["m"] = d * state["m"] + (1 - d) * val
                state["t"] += 1
                smoothed = state["m"] / (1 - d ** state["t"])
                if val < state["best"] - 1e-4:
                    state["best"], state["stale"] = val, 0
                else:
                    state["stale"] += 1
                assert train_loss == train_loss and norm == norm and smoothed == smoothed
            times.append((time.perf_counter() - start) * 1000)
        print(json.dumps({"times": times}), flush=True)


if __name__ == "__main__":
    main()
