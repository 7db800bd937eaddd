"""Train the bundled ``shapes`` network and write its weights, conv1 snapshots and provenance.

    python -m cnnviz_widgets.engine.zoo.train_shapes [--seed 0] [--epochs 4] [--out cnnviz_widgets/assets]

Runs on 2 CPU cores in a few minutes.  Training data: ``ShapesDataset(n, seed=data_seed)``
(default 40,000 images of seed 1) with random flips / 90-degree rotations (every class is
invariant under them); held-out accuracy is measured on ``ShapesDataset(1000, seed=12345)``,
a seed never used for training.  Writes, into ``--out``:

- ``shapes_net.pt``: the state dict in float16 (``load_shapes_state_dict`` casts back);
- ``shapes_conv1_snapshots.pt``: a list of ``{"step": int, "weight": float16 tensor}``,
  conv1's weights at step 0 (the initialisation) and at ~16 steps spaced geometrically
  through training, the last one being the shipped conv1 (lesson 01 shows filters forming);
- ``shapes_net.md``: provenance (command, seeds, time taken, accuracy reached, licence).
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .shapes import SHAPE_CLASSES, ShapesDataset
from .shapes_net import INPUT_SIZE, MEAN, STD, ShapesNet, filter_smoothness

HELDOUT_SEED = 12345


def to_uint8_nchw(images: np.ndarray) -> torch.Tensor:
    """uint8 NxHxWx3 (numpy) -> uint8 Nx3xHxW (torch, contiguous copy)."""
    return torch.tensor(images).permute(0, 3, 1, 2).contiguous()


def normalise(x: torch.Tensor) -> torch.Tensor:
    """uint8 Nx3xHxW -> float32 ``(x / 255 - MEAN) / STD``."""
    x = x.float().div_(255)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (x - mean) / std


@torch.no_grad()
def accuracy(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 500) -> float:
    was_training = net.training
    net.eval()
    correct = 0
    for i in range(0, len(x), batch):
        correct += int((net(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum())
    net.train(was_training)
    return correct / max(1, len(x))


def _dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """One of the 8 flips/rotations of a batch (k in 0..7)."""
    if k & 4:
        x = x.flip(-1)
    return torch.rot90(x, k & 3, dims=(-2, -1))


def snapshot_steps(total: int, count: int = 16) -> list[int]:
    """Step 0, then ``count`` steps spaced geometrically up to ``total`` (inclusive)."""
    steps = {0, total}
    steps.update(int(round(s)) for s in np.geomspace(1, total, count))
    return sorted(s for s in steps if 0 <= s <= total)


def train(
    seed: int = 0,
    data_seed: int = 1,
    n: int = 40000,
    epochs: int = 4,
    batch: int = 128,
    lr: float = 2e-3,
    weight_decay: float = 0.05,
    conv1_weight_decay: float = 0.5,
    heldout: int = 1000,
    threads: int = 1,
    log=print,
):
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    t0 = time.time()

    ds = ShapesDataset(n, seed=data_seed, size=INPUT_SIZE)
    images, labels, _ = ds.arrays()
    x = to_uint8_nchw(images)  # normalised batch by batch
    y = torch.tensor(labels)
    hd = ShapesDataset(heldout, seed=HELDOUT_SEED, size=INPUT_SIZE)
    hx_np, hy_np, _ = hd.arrays()
    hx, hy = normalise(to_uint8_nchw(hx_np)), torch.tensor(hy_np)
    log(f"data: {ds.name} + held-out {hd.name} in {time.time() - t0:.1f}s; "
        f"first 2000 train images after normalisation: mean "
        f"{[round(v, 3) for v in normalise(x[:2000]).mean((0, 2, 3)).tolist()]} std "
        f"{[round(v, 3) for v in normalise(x[:2000]).std((0, 2, 3)).tolist()]}")

    net = ShapesNet()
    net.train()
    conv1 = net.features[0]
    others = [p for p in net.parameters() if p is not conv1.weight]
    # stronger decay on conv1's weights wears the initial noise away (smoother filters)
    opt = torch.optim.AdamW(
        [{"params": [conv1.weight], "weight_decay": conv1_weight_decay},
         {"params": others, "weight_decay": weight_decay}],
        lr=lr,
    )
    steps_per_epoch = n // batch
    total = steps_per_epoch * epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total, pct_start=0.15)
    snap_at = set(snapshot_steps(total))
    snapshots = [{"step": 0, "weight": conv1.weight.detach().clone().half()}]
    gen = torch.Generator().manual_seed(seed)

    step = 0
    t_train = time.time()
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=gen)
        running, seen = 0.0, 0
        for b in range(steps_per_epoch):
            idx = perm[b * batch : (b + 1) * batch]
            k = int(torch.randint(0, 8, (1,), generator=gen))
            xb = _dihedral(normalise(x[idx]), k)
            loss = F.cross_entropy(net(xb), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            running += loss.item() * len(idx)
            seen += len(idx)
            if step in snap_at:
                snapshots.append({"step": step, "weight": conv1.weight.detach().clone().half()})
            if step % 100 == 0 or step == total:
                log(f"epoch {epoch} step {step}/{total} loss {running / seen:.4f} "
                    f"({time.time() - t_train:.0f}s)")
                running, seen = 0.0, 0
        acc = accuracy(net, hx, hy)
        log(f"end of epoch {epoch}: held-out accuracy {acc:.4f} ({time.time() - t0:.0f}s)")

    net.eval()
    stats = {
        "heldout_accuracy": accuracy(net, hx, hy),
        "train_accuracy_first_5000": accuracy(net, normalise(x[:5000]), y[:5000]),
        "seconds": time.time() - t0,
        "steps": total,
        "conv1_smoothness": filter_smoothness(conv1.weight),
        "init_smoothness": filter_smoothness(snapshots[0]["weight"]),
        "train_name": ds.name,
        "heldout_name": hd.name,
    }
    return net, snapshots, stats


def write_outputs(net, snapshots, stats, out: Path, argv: list[str], args) -> None:
    out.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().half() if v.is_floating_point() else v for k, v in net.state_dict().items()}
    torch.save(sd, out / "shapes_net.pt")
    torch.save(snapshots, out / "shapes_conv1_snapshots.pt")
    n_params = sum(p.numel() for p in net.parameters())
    cmd = "python -m cnnviz_widgets.engine.zoo.train_shapes " + " ".join(argv)
    md = f"""# `shapes` network: provenance

- Weights: `shapes_net.pt` (float16 state dict of `cnnviz_widgets.engine.zoo.shapes_net.ShapesNet`,
  {n_params:,} parameters, {(out / 'shapes_net.pt').stat().st_size / 1e6:.2f} MB); conv1 training
  snapshots: `shapes_conv1_snapshots.pt` ({len(snapshots)} snapshots, steps
  {[s['step'] for s in snapshots]}).
- Trained by this kit, from scratch, on the synthetic shapes set
  (`cnnviz_widgets.engine.zoo.shapes`, {len(SHAPE_CLASSES)} classes: {", ".join(SHAPE_CLASSES)}).
- Licence: MIT (same as the kit). No third-party data or weights involved.

## Reproduce

```
{cmd.strip()}
```

- torch seed {args.seed}; training data `{stats['train_name']}` (data seed {args.data_seed}),
  random flips / 90-degree rotations; AdamW (lr {args.lr}, weight decay {args.weight_decay},
  {args.conv1_weight_decay} on conv1's weights),
  one-cycle schedule, batch {args.batch}, {args.epochs} epochs = {stats['steps']} steps;
  input normalisation MEAN={MEAN}, STD={STD} on x in [0, 1].
- Time taken: {stats['seconds']:.0f} s wall clock (data generation included) on {args.threads} CPU thread(s)
  ({platform.processor() or platform.machine()}, torch {torch.__version__}, Python
  {platform.python_version()}).
- Held-out accuracy: **{stats['heldout_accuracy'] * 100:.2f}%** on `{stats['heldout_name']}`
  (seed {HELDOUT_SEED}, never used for training); training accuracy (first 5,000 training
  images) {stats['train_accuracy_first_5000'] * 100:.2f}%.
- conv1 filter roughness (`filter_smoothness`, lower = smoother): trained
  {stats['conv1_smoothness']:.3f}, at initialisation {stats['init_smoothness']:.3f}.

Float results can differ in the last bits across CPUs and torch versions, so a rerun gives
weights of the same quality, not necessarily bit-identical ones.
"""
    (out / "shapes_net.md").write_text(md)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=0, help="torch seed (init, shuffling, augmentation)")
    p.add_argument("--data-seed", type=int, default=1, help="ShapesDataset seed of the training set")
    p.add_argument("--n", type=int, default=40000, help="training images")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--conv1-weight-decay", type=float, default=0.5)
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads; 1 reproduces the shipped weights bit for bit "
                        "(more threads sum in another order and give different, similar weights)")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / "assets")
    args = p.parse_args(argv)
    if args.data_seed == HELDOUT_SEED:
        p.error(f"--data-seed must differ from the held-out seed {HELDOUT_SEED}")
    net, snapshots, stats = train(
        seed=args.seed, data_seed=args.data_seed, n=args.n, epochs=args.epochs,
        batch=args.batch, lr=args.lr, weight_decay=args.weight_decay,
        conv1_weight_decay=args.conv1_weight_decay, threads=args.threads,
    )
    print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in stats.items()})
    write_outputs(net, snapshots, stats, args.out, argv, args)
    print(f"wrote {args.out / 'shapes_net.pt'}, {args.out / 'shapes_conv1_snapshots.pt'}, "
          f"{args.out / 'shapes_net.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
