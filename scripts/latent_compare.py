"""Pixel against latent diffusion, and prompts against labels, at the same wall-clock budget (chapters 10-11).

    python scripts/latent_compare.py speed                                  # data/results/latent_speed.json
    python scripts/latent_compare.py train --budget-minutes 10 --runs runs/latent   # the arms
    python scripts/latent_compare.py ship --runs runs/latent       # -> data/checkpoints/mnist_latent, mnist_text
    python scripts/latent_compare.py evaluate --runs runs/latent            # data/results/latent.json
    python scripts/latent_compare.py report                                 # the results page's tables

The same wall-clock budget, on equal terms on a shared machine: `speed` times a training step of
every arm in one process, interleaved, so whatever else runs slows every arm alike; `train
--budget-minutes M` then gives each arm the number of steps it makes in M minutes at that measured
speed (`steps = M * 60 * images_per_second / batch`), so the comparison does not depend on who else
used the CPU while each arm trained. (`--minutes M` trains for M minutes of wall time instead: fair
only on an otherwise idle machine.) Arms run at once, one thread each; --sequential runs them one
after the other on one core. `evaluate` samples 1000 images from each (DDIM 20, s = 3; `--guidance 1`
writes latent_s1.json instead, without the autoencoder and attribute rows) and
grades them with the project's classifier.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from diffusion_lab.bench import cpu_name
from diffusion_lab.results import load_results, replace_section, save_results

ROOT = Path(__file__).resolve().parent.parent
AE = "data/checkpoints/mnist_ae.safetensors"
LATENT_UNET = ["--base-channels", "48", "--channel-mults", "1", "--num-res-blocks", "2"]
SHIPPED = {"latent": "mnist_latent", "latent_text": "mnist_text"}  # arms shipped in data/checkpoints (copies)
ARMS = {  # name -> (what it is, extra `train` flags)
    "pixel": ("pixel space, class labels (our U-Net, TrainConfig's recipe)", ["--conditional"]),
    "latent": ("latent space, class labels", ["--conditional", "--autoencoder", AE, *LATENT_UNET]),
    "latent_text": ("latent space, prompts in words", ["--text", "--autoencoder", AE, *LATENT_UNET]),
}


def train_command(arm: str, budget: list[str], runs: Path) -> list[str]:
    return [sys.executable, "-m", "diffusion_lab", "train", "--dataset", "mnist", *ARMS[arm][1], *budget,
            "--threads", "1", "--seed", "0", "--out", str(runs / f"{arm}.safetensors")]


def budget_steps(minutes: float) -> dict[str, int]:
    """Steps each arm makes in `minutes` at the training speed `speed` measured (batch 64)."""
    speed = {r["arm"]: r["train_images_per_second"] for r in load_results("latent_speed")}
    return {arm: round(minutes * 60 * ips / 64) for arm, ips in speed.items()}


def train(args) -> None:
    args.runs.mkdir(parents=True, exist_ok=True)
    procs = {}
    steps = budget_steps(args.budget_minutes) if args.budget_minutes else {}
    for arm in args.arms:
        log = open(args.runs / f"{arm}.log", "w")
        budget = ["--steps", str(steps[arm])] if steps else ["--minutes", f"{args.minutes:g}"]
        procs[arm] = subprocess.Popen(train_command(arm, budget, args.runs), cwd=ROOT, stdout=log,
                                      stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
        if args.sequential:  # one slot: one arm at a time, each with the core to itself
            procs[arm].wait()
    for arm, p in procs.items():
        if p.wait():
            raise SystemExit(f"{arm} failed: see {args.runs / (arm + '.log')}")
        print(arm, (args.runs / f"{arm}.log").read_text().strip().splitlines()[-1])


def evaluate(args) -> None:
    from diffusion_lab.checkpoints import read_config
    from diffusion_lab.evaluate import evaluate_checkpoint

    main = args.guidance == 3.0  # the main table: s = 3, with the autoencoder and attribute rows
    rows = [autoencoder_row(args.num)] if main else []
    speed = {r["arm"]: r["train_images_per_second"] for r in load_results("latent_speed")}
    for arm in args.arms:
        path = args.runs / f"{arm}.safetensors"
        if arm in SHIPPED and (ROOT / "data" / "checkpoints" / f"{SHIPPED[arm]}.safetensors").exists():
            path = Path("data/checkpoints") / f"{SHIPPED[arm]}.safetensors"  # the shipped copy of the run
        t = read_config(ROOT / path)["training"]
        for clip in ([True] if arm == "pixel" else [False]):  # pixel: x_0 clipped, its measured best (README)
            r = evaluate_checkpoint(ROOT / path, num=args.num, sampler="ddim", steps=20, guidance=args.guidance,
                                    clip_x0=clip)
            cmd = f"python -m diffusion_lab evaluate --checkpoint {path} --sampler ddim " \
                  f"--steps 20 --guidance {args.guidance:g}{' --clip' if clip else ''} --num {args.num}"
            row = {"arm": arm, "checkpoint": SHIPPED.get(arm), "what": ARMS[arm][0], **r,
                   "training_steps": t["steps_done"],
                   "training_seconds": t["seconds"],
                   "training_images_per_second": round(t["steps_done"] * t["batch_size"] / t["seconds"], 1),
                   "budget": f"{t['steps']} steps = {t['steps'] * 64 / speed[arm] / 60:.1f} minutes of one core at "
                   "the measured speed" if t["steps"] else f"{t['minutes']:g} minutes of wall time",
                   "command": cmd, "cpu": cpu_name(), "threads": 1}
            print(json.dumps(row), flush=True)
            rows.append(row)
    if "latent_text" in args.arms and main:
        rows.append(attribute_row(ROOT / "data" / "checkpoints" / "mnist_text.safetensors", per_class=20))
    save_results("latent" if main else f"latent_s{args.guidance:g}", rows)


@torch.no_grad()
def attribute_row(path: Path, per_class: int) -> dict:
    """Does the text model follow "thick"/"thin" and "slanted"/"upright"? Sample per_class images of
    every digit with each word ("a thick seven") and measure the attribute (text.py's own measures),
    beside the same measures on the real training images of the top and bottom thirds."""
    from diffusion_lab.autoencoder import autoencoder_of
    from diffusion_lab.checkpoints import load_checkpoint
    from diffusion_lab.data import load_data
    from diffusion_lab.samplers import sample
    from diffusion_lab.text import WORDS, attribute_scores, image_attributes, tokenizer_of, with_article

    model, schedule, config = load_checkpoint(path)
    ae, tok = autoencoder_of(path, config), tokenizer_of(config)

    def measures(x):  # images in [-1, 1] -> (ink share, slant) per image
        scores = attribute_scores(x, "mnist")
        return scores["ink"], scores["slant"]

    out = {"arm": "latent_text attributes", "samples_per_word": per_class * 10, "guidance": 3.0, "steps": 20}
    for name, (low, high) in (("ink", ("thin", "thick")), ("slant", ("upright", "slanted"))):
        for word in (low, high):
            names = [WORDS["mnist"].classes[c][0] for c in range(10) for _ in range(per_class)]
            prompts = [with_article(f"{word} {name}") for name in names]  # "a thick seven"
            z = sample(model, schedule, len(prompts), y=tok.encode(prompts), guidance=3.0, steps=20, seed=0,
                       progress=False)
            ink, sl = measures(ae.decode(z))
            out[f"{word}_mean_{name}"] = round(float((ink if name == "ink" else sl).mean()), 4)
    real = load_data("mnist", "train", limit=10_000, verbose=False)
    levels = image_attributes(real.images, real.labels, "mnist")
    ink, sl = measures(real.images)
    for name, values in (("ink", ink), ("slant", sl)):
        low, high = {"ink": ("thin", "thick"), "slant": ("upright", "slanted")}[name]
        out[f"real_{low}_third_mean_{name}"] = round(float(values[levels[name] == 0].mean()), 4)
        out[f"real_{high}_third_mean_{name}"] = round(float(values[levels[name] == 2].mean()), 4)
    out["command"] = "python scripts/latent_compare.py evaluate"
    print(json.dumps(out), flush=True)
    return out


def autoencoder_row(num: int = 1000) -> dict:
    """The shipped autoencoder on the MNIST test set: pixel error, and what the classifier makes of its
    reconstructions (the best any latent model can do: it can only draw what the decoder can)."""
    from diffusion_lab.autoencoder import decode_all, encode_all, load_autoencoder, reconstruction_error
    from diffusion_lab.classifier import features_and_predictions, load_classifier
    from diffusion_lab.data import load_data
    from diffusion_lab.evaluate import FD_SPREAD, real_split
    from diffusion_lab.metrics import class_accuracy, frechet_distance, frechet_half_std

    ae, test = load_autoencoder(ROOT / AE), load_data("mnist", "test")
    clf, info, test_feats, test_labels = load_classifier("mnist")  # the shipped features: the models' reference
    recon = decode_all(ae, encode_all(ae, test.images)).clamp(-1, 1)
    feats, preds, _ = features_and_predictions(clf, recon)
    # Reconstructions of a random half against the real other half (as evaluate.real_floor: MNIST's
    # test set is ordered, its two halves come from different writers).
    a, b = torch.randperm(len(test.images), generator=torch.Generator().manual_seed(0)).chunk(2)
    real_feats, _, _ = features_and_predictions(clf, test.images)
    row = {"arm": "autoencoder", "what": "D(E(x)) of the 10,000 MNIST test images",
           **reconstruction_error(ae, test.images),
           "class_accuracy_of_reconstructions": round(class_accuracy(preds, test.labels), 4),
           "classifier_test_accuracy": info["test_accuracy"],
           "fd_reconstructions_vs_real": round(frechet_distance(feats[a], real_feats[b]), 3),
           "fd_real_vs_real": round(frechet_distance(real_feats[a], real_feats[b]), 3),
           "command": "python scripts/latent_compare.py evaluate"}
    # The same yardstick as the models' rows: num reconstructions of held-out real images (class-balanced,
    # as evaluate.real_split picks them) against the models' very reference set, with its spread.
    recon_held_out, _ = real_split(feats, num, test_labels)
    _, reference = real_split(test_feats, num, test_labels)
    row |= {"fd_num": num, "fd": round(frechet_distance(recon_held_out, reference), 3),
            "fd_std": round(frechet_half_std(recon_held_out, reference), 3), "fd_spread": FD_SPREAD}
    print(json.dumps(row), flush=True)
    return row


def speed(args) -> None:
    """Training images/s (train() itself for 60 steps: EMA, prompts and all; latents encoded beforehand, as
    in a real run) and sampling images/s (50 images, DDIM 20, s = 3, latents decoded) per arm, best of
    `repeats` interleaved rounds. The trained weights do not matter for speed."""
    from diffusion_lab.autoencoder import load_autoencoder
    from diffusion_lab.data import load_data
    from diffusion_lab.models import count_parameters
    from diffusion_lab.samplers import sample
    from diffusion_lab.schedules import make_schedule
    from diffusion_lab.text import Tokenizer, class_prompts, vocabulary
    from diffusion_lab.training import TrainConfig, train

    torch.set_num_threads(args.threads)
    ae, data = load_autoencoder(ROOT / AE), load_data("mnist", "train", limit=2000, verbose=False)
    latent = dict(base_channels=48, channel_mults=(1,), num_res_blocks=2, autoencoder=str(ROOT / AE))
    cfgs = {"pixel": TrainConfig(), "latent": TrainConfig(**latent), "latent_text": TrainConfig(**latent, text=True)}
    tok, schedule = Tokenizer(vocabulary("mnist")), make_schedule("linear", 1000)
    best = {arm: {"train": 0.0, "sample": 0.0} for arm in cfgs}
    params = {}
    for _ in range(args.repeats):
        for arm, cfg in cfgs.items():
            cfg.steps, cfg.warmup = 60, 10
            r = train(cfg, data=data, progress=False)
            best[arm]["train"] = max(best[arm]["train"], r.images_per_second)
            params[arm] = count_parameters(r.model)
            y = torch.arange(50) % 10
            y = class_prompts(y, "mnist", tok) if cfg.text else y
            start = time.perf_counter()
            x = sample(r.model, schedule, 50, y=y, guidance=3.0, steps=20, progress=False)
            if arm != "pixel":
                with torch.no_grad():
                    ae.decode(x)
            best[arm]["sample"] = max(best[arm]["sample"], 50 / (time.perf_counter() - start))
    rows = [{"arm": arm, "what": ARMS[arm][0], "parameters": params[arm],
             "train_images_per_second": round(b["train"], 1), "sample_images_per_second": round(b["sample"], 1),
             "train_ratio_to_pixel": round(b["train"] / best["pixel"]["train"], 2),
             "sample_ratio_to_pixel": round(b["sample"] / best["pixel"]["sample"], 2),
             "threads": args.threads, "repeats": args.repeats,
             "command": f"python scripts/latent_compare.py speed --threads {args.threads}"} for arm, b in best.items()]
    for r in rows:
        print(json.dumps(r))
    save_results("latent_speed", rows)


def ship(args) -> None:
    """Copy the latent arms to data/checkpoints (SHIPPED names), their JSON pointing at the shipped
    autoencoder beside them (the sha256 it records is checked on every load)."""
    ck = ROOT / "data" / "checkpoints"
    for arm, name in SHIPPED.items():
        config = json.loads((args.runs / f"{arm}.json").read_text())
        config["latent"]["autoencoder"] = Path(AE).name
        shutil.copyfile(args.runs / f"{arm}.safetensors", ck / f"{name}.safetensors")
        (ck / f"{name}.json").write_text(json.dumps(config, indent=2) + "\n")
        print(f"{arm} -> data/checkpoints/{name} ({config['training']['steps_done']} steps)")


def _acc(r: dict) -> str:
    from diffusion_lab.claims import with_spread

    return with_spread(r, "class_accuracy")


def report(args) -> None:
    """Write the results page's latent-diffusion tables (between <!-- latent:start --> and <!-- latent:end -->)
    from data/results/latent.json and latent_speed.json."""
    rows = load_results("latent")
    speed = load_results("latent_speed")
    ae = next(r for r in rows if r["arm"] == "autoencoder")
    attrs = next((r for r in rows if r["arm"] == "latent_text attributes"), None)
    arms = [r for r in rows if "sampler" in r]
    out = [f"Evaluated on {arms[0].get('cpu', 'this machine')}; the budgets and the speed table come from the "
           "interleaved measurement, which any load slows alike. n = generated images; ± one standard deviation "
           "(FD: half-sampling; accuracy: binomial).", "",
           "**Same budget** (" + arms[0]["budget"].split(" = ")[-1] + ": `python scripts/latent_compare.py "
           "train --budget-minutes 10`; graded on 1000 guided samples, DDIM 20, s = 3: `python "
           "scripts/latent_compare.py evaluate`):", "",
           "| arm | training steps | n | FD ± std (floor) | class accuracy ± std | recall | command |",
           "|---|---|---|---|---|---|---|"]
    for r in arms:
        out.append(f"| {r['what']}{', x_0 clipped' if r['clip_x0'] else ''} | {r['training_steps']} | {r['num']} | "
                   f"{r['fd']:.1f} ± {r['fd_std']:.1f} ({r['fd_real_floor']:.1f}) | {_acc(r)} | {r['recall']:.3f} | "
                   f"`{r['command']}` |")
    out += ["", f"The autoencoder alone (`{AE}`, `python scripts/latent_compare.py evaluate`): reconstructions "
            f"of the 10,000 MNIST test images have MSE {ae['mse']} (PSNR {ae['psnr_db']} dB); the classifier "
            f"recognises {ae['class_accuracy_of_reconstructions']:.2%} of them (real images: "
            f"{ae['classifier_test_accuracy']:.2%}); FD {ae['fd_reconstructions_vs_real']:.1f} of one half against "
            f"the real other half (real against real: {ae['fd_real_vs_real']:.1f}), and FD {ae['fd']:.1f} ± "
            f"{ae['fd_std']:.1f} for {ae['fd_num']} reconstructions against the models' reference set: the best FD a "
            "latent model could reach there. (Accuracy is not bounded so: a guided sample is drawn to be its class, "
            "a reconstruction is of a real, sometimes ambiguous, digit.)", ""]
    if attrs:
        out += [f"Attributes ({attrs['samples_per_word']} samples per word, the text model, s = 3): ink share "
                f"{attrs['thin_mean_ink']:.3f} for \"thin\" against {attrs['thick_mean_ink']:.3f} for \"thick\" "
                f"(real thirds: {attrs['real_thin_third_mean_ink']:.3f} and {attrs['real_thick_third_mean_ink']:.3f}); "
                f"slant {attrs['upright_mean_slant']:.3f} for \"upright\" against {attrs['slanted_mean_slant']:.3f} "
                f"for \"slanted\" (real thirds: {attrs['real_upright_third_mean_slant']:.3f} and "
                f"{attrs['real_slanted_third_mean_slant']:.3f}).", ""]
    s1 = [r for r in load_results("latent_s1") if "sampler" in r]
    out += what_wins(arms, speed)
    if s1:
        out += ["**Without guidance's trade** (s = 1, the plain conditional model; 1000 samples, DDIM 20: "
                "`python scripts/latent_compare.py evaluate --guidance 1`):", "",
                "| arm | n | FD ± std (floor) | class accuracy ± std | within-class spread |", "|---|---|---|---|---|"]
        out += [f"| {r['what']}{', x_0 clipped' if r['clip_x0'] else ''} | {r['num']} | {r['fd']:.1f} ± "
                f"{r['fd_std']:.1f} ({r['fd_real_floor']:.1f}) | {_acc(r)} | {r['within_class_spread']:.2f} |"
                for r in s1]
        out.append("")
    out += ["**Speed of one training step and of sampling** (`" + speed[0]["command"] + "`; untrained weights, "
            "best of interleaved rounds, batch 64 training, 50 images DDIM 20 with guidance, latents decoded):", "",
            "| arm | parameters | training images/s | ratio | sampling images/s | ratio |", "|---|---|---|---|---|---|"]
    for r in speed:
        out.append(f"| {r['what']} | {r['parameters']:,} | {r['train_images_per_second']} | "
                   f"{r['train_ratio_to_pixel']} | {r['sample_images_per_second']} | {r['sample_ratio_to_pixel']} |")
    replace_section(ROOT / "docs" / "results.md", "latent", "\n".join(out))  # the results page
    print("\n".join(out))


def what_wins(arms: list[dict], speed: list[dict]) -> list[str]:
    """The comparison in words: the speed ratios as measured, and every ranking a tested claim
    (diffusion_lab/claims.py), so the page cannot say more than the spreads support."""
    from diffusion_lab.claims import check

    px, lt = (next(r for r in arms if r["arm"] == a) for a in ("pixel", "latent"))
    sp = {r["arm"]: r for r in speed}
    lines = [f"**What the rows show.** In the same minutes the latent model made "
             f"{lt['training_steps'] / px['training_steps']:.1f}x the pixel model's training steps (a latent step "
             f"takes {1 / sp['latent']['train_ratio_to_pixel']:.2f}x the time of a pixel step) and it samples "
             f"{sp['latent']['sample_ratio_to_pixel']}x as many images per second, decoder included.", ""]
    for key in ("latent_beats_pixel_s1", "latent_vs_pixel_accuracy_s1", "pixel_beats_latent_s3",
                "latent_vs_pixel_accuracy_s3", "pixel_beats_latent_recall_s3", "autoencoder_beats_latent_fd",
                "latent_above_reconstructions_accuracy", "labels_beat_text_fd_s1", "labels_vs_text_fd_s3",
                "labels_beat_text_accuracy_s3"):
        lines += [f"<!-- claim: {key} -->", check(key), "<!-- /claim -->", ""]  # scripts/render_claims.py checks them
    return lines + [""]


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("part", choices=["speed", "train", "ship", "evaluate", "report"])
    p.add_argument("--runs", type=Path, default=Path("runs/latent"))
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    p.add_argument("--minutes", type=float, default=10.0, help="train: wall-clock minutes per arm")
    p.add_argument("--budget-minutes", type=float, help="train/evaluate: steps = these minutes at the measured speed")
    p.add_argument("--num", type=int, default=1000)
    p.add_argument("--guidance", type=float, default=3.0, help="evaluate: guidance scale s (3: the main table)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--sequential", action="store_true", help="train: one arm after the other (one core)")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    {"speed": speed, "train": train, "ship": ship, "evaluate": evaluate, "report": report}[a.part](a)
