"""Diffusion against flow matching, and the U-Net against a DiT, on the same CPU budget (chapter 13).

    python scripts/flow_compare.py speed                               # data/results/flow_speed.json
    python scripts/flow_compare.py train --budget-minutes 10 --runs runs/flow      # the three arms
    python scripts/flow_compare.py evaluate --runs runs/flow           # data/results/flow.json
    python scripts/flow_compare.py straightness --runs runs/flow       # data/results/flow_straightness.json
    python scripts/flow_compare.py ship --runs runs/flow --arm flow_unet          # -> data/checkpoints/mnist_flow
    python scripts/flow_compare.py card                                # data/results/flow_checkpoint.json
    python scripts/flow_compare.py report                              # the results page's section

The arms share everything but what is compared: class-conditional MNIST, label dropout 0.1, batch 64,
the course's optimiser, EMA and seed. ddpm_unet is the course's recipe (VP path, eps, min-SNR);
flow_unet the same U-Net on the linear path (velocity target, t ~ U(0, 1)); flow_dit the same flow with
a DiT. `speed` times a training step of each arm in one process, interleaved over `--repeats` rounds
(whatever else runs slows every arm alike); `train --budget-minutes M` gives each arm the steps it makes
in M minutes at that speed, so the comparison does not depend on who else used the CPU while an arm
trained. `evaluate` samples 1000 class-balanced images per arm, sampler and number of model calls
(1, 2, 4, 10, 20, 50; VP: DDIM and DPM-Solver++ 2M with trailing timesteps, which start at the noisiest
step; linear: Euler and Heun), unguided (s = 1), and grades them with the project's classifier.
`straightness` measures Liu et al.'s straightness of each arm's 50-step ODE paths (paths.straightness;
a VP path is first written in linear-path coordinates, paths.vp_to_linear).
Run it alone on the machine: two torch jobs slow each other.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch

from diffusion_lab.bench import cpu_name
from diffusion_lab.results import load_results, replace_section, save_results

ROOT = Path(__file__).resolve().parent.parent
ARMS = {
    "ddpm_unet": ("DDPM: VP path, eps target, U-Net", {}),
    "flow_unet": ("rectified flow: linear path, velocity target, U-Net", {"path": "linear"}),
    "flow_dit": ("rectified flow: linear path, velocity target, DiT", {"path": "linear", "model": "dit"}),
}
SAMPLERS = {"vp": ("ddim", "dpmpp2m"), "linear": ("euler", "heun")}
CALLS = (1, 2, 4, 10, 20, 50)
BATCH = 64


def config(arm: str, **budget):
    from diffusion_lab.training import TrainConfig

    return TrainConfig(dataset="mnist", conditional=True, seed=0, **ARMS[arm][1], **budget)


def speed(args) -> None:
    """Training images/s of train() itself (60 steps: EMA, label dropout and all) per arm, best of
    `repeats` interleaved rounds, with `threads` threads. The weights do not matter for speed."""
    from diffusion_lab.data import load_data
    from diffusion_lab.models import count_parameters
    from diffusion_lab.training import train

    torch.set_num_threads(args.threads)
    data = load_data("mnist", "train", limit=2000, verbose=False)
    best, params = dict.fromkeys(ARMS, 0.0), {}
    for _ in range(args.repeats):
        for arm in ARMS:
            r = train(config(arm, steps=60, warmup=10, checkpoint_every=0), data=data, progress=False)
            best[arm] = max(best[arm], r.images_per_second)
            params[arm] = count_parameters(r.model)
    rows = [{"arm": arm, "what": ARMS[arm][0], "parameters": params[arm], "train_images_per_second": round(ips, 1),
             "ratio_to_ddpm_unet": round(ips / best["ddpm_unet"], 2), "threads": args.threads,
             "repeats": args.repeats, "cpu": cpu_name(),
             "command": f"python scripts/flow_compare.py speed --threads {args.threads} --repeats {args.repeats}"}
            for arm, ips in best.items()]
    for r in rows:
        print(json.dumps(r))
    save_results("flow_speed", rows)


def budget_steps(minutes: float) -> dict[str, int]:
    """Steps each arm makes in `minutes` at the speed `speed` measured."""
    return {r["arm"]: round(minutes * 60 * r["train_images_per_second"] / BATCH) for r in load_results("flow_speed")}


def train(args) -> None:
    from diffusion_lab.data import load_data
    from diffusion_lab.training import train as train_run

    torch.set_num_threads(args.threads)
    args.runs.mkdir(parents=True, exist_ok=True)
    steps, data = budget_steps(args.budget_minutes), load_data("mnist", "train")
    for arm in args.arms:
        out = args.runs / f"{arm}.safetensors"
        if out.exists() and not args.again:
            print(f"{arm}: {out} exists (--again to retrain)")
            continue
        r = train_run(config(arm, steps=steps[arm]), out=out, data=data, progress=False)
        print(f"{arm}: {r.step} steps in {r.seconds:.0f} s, final loss {sum(r.losses[-100:]) / 100:.4f}", flush=True)


def _path(args, arm: str) -> Path:
    return args.runs / f"{arm}.safetensors"


def evaluate(args) -> None:
    from diffusion_lab.checkpoints import read_config
    from diffusion_lab.evaluate import evaluate_checkpoint
    from diffusion_lab.solvers import steps_for_calls

    speed = {r["arm"]: r for r in load_results("flow_speed")}
    rows = [r for r in load_results("flow") if r["arm"] not in args.arms]  # the other arms' rows stay
    for arm in args.arms:
        path = _path(args, arm)
        config_ = read_config(path)
        t, kind = config_["training"], config_["model"]["kwargs"].get("path", "vp")
        minutes = t["steps"] * BATCH / speed[arm]["train_images_per_second"] / 60
        for sampler in SAMPLERS[kind]:
            for calls in CALLS:
                steps = steps_for_calls(sampler, calls)
                if sampler == "heun" and calls == 2:  # Heun cannot make 2 calls: 1 step is 1 call (Euler)
                    continue
                options = {"spacing": "trailing"} if kind == "vp" else {}
                r = evaluate_checkpoint(path, num=args.num, sampler=sampler, steps=steps, guidance=args.guidance,
                                        **options)
                flags = " --spacing trailing" if kind == "vp" else ""
                row = {"arm": arm, "what": ARMS[arm][0], "name": f"{arm} {sampler} {r['nfe']}", **r,
                       "training_steps": t["steps_done"], "training_seconds": t["seconds"],
                       "budget": f"{t['steps']} steps = {minutes:.1f} minutes at the speed measured side by side",
                       "command": f"python -m diffusion_lab evaluate --checkpoint runs/flow/{arm}.safetensors "
                                  f"--sampler {sampler} --steps {steps}{flags} --guidance {args.guidance:g} "
                                  f"--num {args.num}",
                       "cpu": cpu_name(), "threads": torch.get_num_threads()}
                print(json.dumps(row), flush=True)
                rows = [x for x in rows if x["name"] != row["name"] or x["guidance"] != row["guidance"]] + [row]
                save_results("flow", rows)  # after every row: an interrupted run keeps what it measured


@torch.no_grad()
def straightness(args) -> None:
    from diffusion_lab.checkpoints import load_checkpoint
    from diffusion_lab.paths import flow_grid, path_of, vp_to_linear
    from diffusion_lab.paths import straightness as measure
    from diffusion_lab.samplers import sample

    rows = []
    for arm in args.arms:
        model, schedule, _ = load_checkpoint(_path(args, arm))
        kind, y = path_of(model), torch.arange(args.num) % 10
        sampler = "ddim" if kind == "vp" else "euler"
        options = {"spacing": "trailing"} if kind == "vp" else {}
        _, traj = sample(model, schedule, args.num, y=y, sampler=sampler, steps=args.steps, seed=0, amp=True,
                         return_trajectory=True, progress=False, **options)
        states = traj["x_t"].double()
        if kind == "vp":  # written on the linear path at the same signal-to-noise ratio
            abs_ = [float(schedule.alpha_bar[t]) for t in traj["t"]] + [1.0]  # the last state is x_0 itself
            pairs = [vp_to_linear(x, ab) for x, ab in zip(states, abs_)]
            states, times = torch.stack([p[0] for p in pairs]), [p[1] for p in pairs]
        else:
            times = flow_grid(args.steps).tolist()
        row = {"arm": arm, "what": ARMS[arm][0], "sampler": sampler, "steps": args.steps, "num": args.num,
               "straightness": round(measure(times, states), 5),
               # the spread of the estimate: straightness per image, then the standard error of their mean
               "straightness_std": round(float(torch.tensor([measure(times, states[:, i:i + 1])
                                                            for i in range(args.num)]).std() / args.num**0.5), 5),
               "start_time": round(times[0], 4),
               "command": f"python scripts/flow_compare.py straightness --steps {args.steps} --num {args.num}"}
        print(json.dumps(row), flush=True)
        rows.append(row)
    save_results("flow_straightness", rows)


def card(args) -> None:
    """The shipped mnist_flow graded as the issue's targets ask: Euler, 10 steps, n = 1000, unguided (s = 1)
    and guided (s = 3) -> data/results/flow_checkpoint.json (the model card reads it)."""
    from diffusion_lab.checkpoints import load_pretrained
    from diffusion_lab.evaluate import evaluate_model

    model, schedule, config = load_pretrained("mnist_flow")
    rows = []
    for guidance in (1.0, 3.0):
        r = evaluate_model(model, schedule, "mnist", num=args.num, sampler="euler", steps=10, guidance=guidance)
        row = {"checkpoint": "mnist_flow", **r, "training_steps": config["training"]["steps_done"],
               "training_seconds": config["training"]["seconds"],
               "command": f"python -m diffusion_lab evaluate --checkpoint data/checkpoints/mnist_flow.safetensors "
                          f"--sampler euler --steps 10 --guidance {guidance:g} --num {args.num}",
               "cpu": cpu_name(), "threads": torch.get_num_threads()}
        print(json.dumps(row), flush=True)
        rows.append(row)
    save_results("flow_checkpoint", rows)


def ship(args) -> None:
    """Copy an arm's checkpoint to data/checkpoints/mnist_flow (weights and config)."""
    source = _path(args, args.arm)
    for suffix in (".safetensors", ".json"):
        shutil.copyfile(source.with_suffix(suffix), ROOT / "data" / "checkpoints" / f"mnist_flow{suffix}")
    print(f"shipped {source} as data/checkpoints/mnist_flow")


def report(args) -> None:
    """Write the results page's flow-matching section (between <!-- flow:start --> and <!-- flow:end -->)
    from flow.json, flow_speed.json and flow_straightness.json; every ranking in it is a tested claim."""
    from diffusion_lab.claims import CLAIMS, check, with_spread

    rows, speed = load_results("flow"), load_results("flow_speed")
    bent = load_results("flow_straightness")
    out = [f"Evaluated on {rows[0]['cpu']}, {rows[0]['threads']} threads; budgets from the interleaved speed "
           f"measurement (`{speed[0]['command']}`), which any load slows alike. n = generated images per row "
           "(class-balanced, unguided: s = 1); ± one standard deviation (FD: half-sampling; fractions: binomial).",
           "", "| arm | training images/s | ratio | parameters | training steps |", "|---|---|---|---|---|"]
    steps = {r["arm"]: r["training_steps"] for r in rows}
    out += [f"| {r['what']} | {r['train_images_per_second']} | {r['ratio_to_ddpm_unet']} | {r['parameters']:,} | "
            f"{steps.get(r['arm'], '-')} |" for r in speed]
    out += ["", f"Same budget ({rows[0]['budget'].split(' = ')[-1]}: `python scripts/flow_compare.py train "
            "--budget-minutes 10`), sampled with `python scripts/flow_compare.py evaluate` (each row's command "
            "in data/results/flow.json):", "",
            "| arm | sampler | model calls | n | FD ± std | precision | recall | class accuracy ± std |",
            "|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (list(ARMS).index(r["arm"]), r["sampler"], r["nfe"])):
        out.append(f"| {r['arm']} | {r['sampler']} | {r['nfe']} | {r['num']} | {with_spread(r, 'fd')} | "
                   f"{r['precision']:.3f} | {r['recall']:.3f} | {with_spread(r, 'class_accuracy')} |")
    out += ["", f"The real images' own FD at n = {rows[0]['num']}: {with_spread(rows[0], 'fd_real_floor')}.", ""]
    if bent:
        out += [f"Straightness (Liu et al. 2022) of each model's {bent[0]['steps']}-step ODE paths "
                f"(`{bent[0]['command']}`; VP paths in linear-path coordinates; ± the standard error over images):", "",
                "| arm | sampler | n | straightness |", "|---|---|---|---|"]
        out += [f"| {r['arm']} | {r['sampler']} | {r['num']} | {r['straightness']:.4f} ± {r['straightness_std']:.4f} |"
                for r in bent]
        out.append("")
    for key in [k for k, c in CLAIMS.items() if c.part in ("flow", "flow_straightness")]:
        out += [f"<!-- claim: {key} -->", check(key), "<!-- /claim -->", ""]
    replace_section(ROOT / "docs" / "results.md", "flow", "\n".join(out))
    print("\n".join(out))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("part", choices=("speed", "train", "evaluate", "straightness", "ship", "card", "report"))
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "flow")
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    p.add_argument("--arm", default="flow_unet", choices=list(ARMS), help="ship: which arm")
    p.add_argument("--budget-minutes", type=float, default=10.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--num", type=int, default=None, help="evaluate: 1000; straightness: 256")
    p.add_argument("--steps", type=int, default=50, help="straightness: ODE steps")
    p.add_argument("--guidance", type=float, default=1.0)
    p.add_argument("--again", action="store_true", help="train: retrain an arm whose checkpoint exists")
    args = p.parse_args(argv)
    args.num = args.num or (256 if args.part == "straightness" else 1000)
    torch.set_num_threads(args.threads)
    {"speed": speed, "train": train, "evaluate": evaluate, "straightness": straightness, "ship": ship,
     "card": card, "report": report}[args.part](args)


if __name__ == "__main__":
    sys.exit(main())
