"""Training throughput of `train()` itself (the loop, not just the model): images per second.

    python scripts/train_speed.py                          # this checkout
    python scripts/train_speed.py --compare OTHER_CHECKOUT # both, alternating, and the ratio

--compare runs the same measurement with OTHER_CHECKOUT's package (e.g. `git archive main | tar -x -C
/tmp/main`) and this one in turn, `--rounds` times each, in fresh processes, and prints the median
images/s of each and their ratio (this / other). Run it with the machine to itself: on a shared 2-core
machine, hold both cores (2 threads) and run nothing else beside it. The recipe is TrainConfig's default
(MNIST, width 16, batch 64, bf16 where native), on the shipped offline MNIST subset.
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ONE_RUN = """
import json, time, torch
from diffusion_lab.data import load_data
from diffusion_lab.training import TrainConfig, train
data = load_data("mnist", "train", verbose=False)
train(TrainConfig(steps={warmup}, checkpoint_every=0), data=data, progress=False)  # warm up
r = train(TrainConfig(steps={steps}, checkpoint_every=0), data=data, progress=False)
print(json.dumps({{"images_per_second": r.images_per_second, "threads": torch.get_num_threads()}}))
"""


def measure(root: Path, steps: int, warmup: int) -> dict:
    code = ONE_RUN.format(steps=steps, warmup=warmup)
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--compare", type=Path, help="another checkout of the repository to measure in turn")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    a = p.parse_args()
    here = Path(__file__).resolve().parents[1]
    roots = {"this": here} | ({"other": a.compare.resolve()} if a.compare else {})
    rates = {name: [] for name in roots}
    for _ in range(a.rounds):
        for name, root in roots.items():
            r = measure(root, a.steps, a.warmup)
            rates[name].append(round(r["images_per_second"], 1))
            print(name, r, flush=True)
    result = {name: {"median_images_per_second": statistics.median(v), "runs": v} for name, v in rates.items()}
    result["threads"] = r["threads"]
    if a.compare:
        result["ratio_this_over_other"] = round(result["this"]["median_images_per_second"]
                                                / result["other"]["median_images_per_second"], 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
