"""Pixel against latent diffusion, and prompts against labels, at the same wall-clock budget (chapters 10-11).

    python scripts/latent_compare.py train --minutes 10 --runs runs/latent   # the arms, in parallel
    python scripts/latent_compare.py evaluate --runs runs/latent            # data/results/latent.json
    python scripts/latent_compare.py speed                                  # data/results/latent_speed.json
    python scripts/latent_compare.py report                                 # the README's tables

`train` starts every arm at once, one thread each, so they share the machine on equal terms (run it
alone: `cpujob --all python scripts/latent_compare.py train ...` here); with --sequential it trains
them one after the other, for one cpujob slot (one core) each. The arms differ only in what
ARMS says: the pixel U-Net is TrainConfig's default recipe; the latent ones denoise the shipped
autoencoder's 4x7x7 latents with a one-level U-Net (7x7 is too small to halve twice) that is wider,
since each of its steps is cheaper. `evaluate` samples 1000 images from each (DDIM 20, s = 3) and
grades them with the project's classifier; `speed` times one training step and sampling, arm by arm,
interleaved, so a busy machine slows every arm alike.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "data" / "results"
AE = "data/checkpoints/mnist_ae.safetensors"
LATENT_UNET = ["--base-channels", "48", "--channel-mults", "1", "--num-res-blocks", "2"]
SHIPPED = {"latent": "mnist_latent", "latent_text": "mnist_text"}  # arms shipped in data/checkpoints (copies)
ARMS = {  # name -> (what it is, extra `train` flags)
    "pixel": ("pixel space, class labels (our U-Net, TrainConfig's recipe)", ["--conditional"]),
    "latent": ("latent space, class labels", ["--conditional", "--autoencoder", AE, *LATENT_UNET]),
    "latent_text": ("latent space, prompts in words", ["--text", "--autoencoder", AE, *LATENT_UNET]),
}


def train_command(arm: str, minutes: float, runs: Path) -> list[str]:
    return [sys.executable, "-m", "diffusion_lab", "train", "--dataset", "mnist", *ARMS[arm][1],
            "--minutes", f"{minutes:g}", "--threads", "1", "--seed", "0", "--out", str(runs / f"{arm}.safetensors")]


def train(args) -> None:
    args.runs.mkdir(parents=True, exist_ok=True)
    procs = {}
    for arm in args.arms:
        log = open(args.runs / f"{arm}.log", "w")
        procs[arm] = subprocess.Popen(train_command(arm, args.minutes, args.runs), cwd=ROOT, stdout=log,
                                      stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
        if args.sequential:  # one slot: one arm at a time, each with the core to itself
            procs[arm].wait()
    for arm, p in procs.items():
        if p.wait():
            raise SystemExit(f"{arm} failed: see {args.runs / (arm + '.log')}")
        print(arm, (args.runs / f"{arm}.log").read_text().strip().splitlines()[-1])


def evaluate(args) -> None:
    from diffusion_lab.checkpoints import atomic_write, read_config
    from diffusion_lab.evaluate import evaluate_checkpoint

    rows = [autoencoder_row()]
    for arm in args.arms:
        path = args.runs / f"{arm}.safetensors"
        if arm in SHIPPED and (ROOT / "data" / "checkpoints" / f"{SHIPPED[arm]}.safetensors").exists():
            path = Path("data/checkpoints") / f"{SHIPPED[arm]}.safetensors"  # the shipped copy of the run
        t = read_config(ROOT / path)["training"]
        for clip in ([True, False] if arm == "pixel" else [False]):
            r = evaluate_checkpoint(ROOT / path, num=args.num, sampler="ddim", steps=20, guidance=3.0, clip_x0=clip)
            cmd = f"python -m diffusion_lab evaluate --checkpoint {path} --sampler ddim " \
                  f"--steps 20 --guidance 3{' --clip' if clip else ''} --num {args.num}"
            row = {"arm": arm, "checkpoint": SHIPPED.get(arm), "what": ARMS[arm][0], **r,
                   "training_steps": t["steps_done"],
                   "training_seconds": t["seconds"],
                   "training_images_per_second": round(t["steps_done"] * t["batch_size"] / t["seconds"], 1),
                   "train_command": " ".join(["python", *train_command(arm, t["minutes"], args.runs)[1:]]),
                   "command": cmd}
            print(json.dumps(row), flush=True)
            rows.append(row)
    if "latent_text" in args.arms:
        rows.append(attribute_row(ROOT / "data" / "checkpoints" / "mnist_text.safetensors", per_class=args.num // 10))
    text = json.dumps(rows, indent=1) + "\n"
    atomic_write(RESULTS / "latent.json", lambda tmp: Path(tmp).write_text(text))


@torch.no_grad()
def attribute_row(path: Path, per_class: int) -> dict:
    """Does the text model follow "thick"/"thin" and "slanted"/"upright"? Sample per_class images of
    every digit with each word ("a thick seven") and measure the attribute (text.py's own measures),
    beside the same measures on the real training images of the top and bottom thirds."""
    from diffusion_lab.autoencoder import autoencoder_of
    from diffusion_lab.checkpoints import load_checkpoint
    from diffusion_lab.data import load_data
    from diffusion_lab.samplers import sample
    from diffusion_lab.text import CLASS_NAMES, image_attributes, slant, tokenizer_of, with_article

    model, schedule, config = load_checkpoint(path)
    ae, tok = autoencoder_of(path, config), tokenizer_of(config)

    def measures(x):  # images in [-1, 1] -> (ink share, slant) per image
        x01 = ((x.float() + 1) / 2).clamp(0, 1)
        return (x01 > 0.5).float().flatten(1).mean(1), slant(x01)

    out = {"arm": "latent_text attributes", "samples_per_word": per_class * 10, "guidance": 3.0, "steps": 20}
    for name, (low, high) in (("ink", ("thin", "thick")), ("slant", ("upright", "slanted"))):
        for word in (low, high):
            names = [CLASS_NAMES["mnist"][c][0] for c in range(10) for _ in range(per_class)]
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


def autoencoder_row() -> dict:
    """The shipped autoencoder on the MNIST test set: pixel error, and what the classifier makes of its
    reconstructions (the best any latent model can do: it can only draw what the decoder can)."""
    from diffusion_lab.autoencoder import decode_all, encode_all, load_autoencoder, reconstruction_error
    from diffusion_lab.classifier import features_and_predictions, load_classifier
    from diffusion_lab.data import load_data
    from diffusion_lab.metrics import class_accuracy, frechet_distance

    ae, test = load_autoencoder(ROOT / AE), load_data("mnist", "test")
    clf, info, test_feats, _ = load_classifier("mnist")
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
    print(json.dumps(row), flush=True)
    return row


def speed(args) -> None:
    """Training images/s and sampling images/s (DDIM 20, s = 3; latents decoded) per arm, untrained
    weights (speed does not depend on them), best of `repeats` interleaved rounds."""
    from diffusion_lab.autoencoder import load_autoencoder
    from diffusion_lab.checkpoints import atomic_write
    from diffusion_lab.data import dataset_info
    from diffusion_lab.models import build_model, count_parameters
    from diffusion_lab.samplers import sample
    from diffusion_lab.schedules import make_schedule
    from diffusion_lab.settings import autocast_dtype
    from diffusion_lab.text import Tokenizer, class_prompts, vocabulary
    from diffusion_lab.training import TrainConfig

    torch.set_num_threads(args.threads)
    info, ae = dataset_info("mnist"), load_autoencoder(ROOT / AE)
    latent = dict(base_channels=48, channel_mults=(1,), num_res_blocks=2)
    cfgs = {"pixel": TrainConfig(), "latent": TrainConfig(**latent, autoencoder=AE),
            "latent_text": TrainConfig(**latent, autoencoder=AE, text=True)}
    shapes = {"pixel": (1, 28, 28), "latent": (4, 7, 7), "latent_text": (4, 7, 7)}
    tok = Tokenizer(vocabulary("mnist"))
    sched, amp = make_schedule("linear", 1000), autocast_dtype(torch.device("cpu"))
    best = {arm: {"train": 0.0, "sample": 0.0} for arm in cfgs}
    models = {arm: build_model("unet", **cfg.model_kwargs(info, shapes[arm])) for arm, cfg in cfgs.items()}
    for _ in range(args.repeats):
        for arm, model in models.items():
            y = torch.arange(64) % 10
            y = class_prompts(y, "mnist", tok) if cfgs[arm].text else y
            x, t = torch.randn(64, *shapes[arm]), torch.randint(1000, (64,))
            opt = torch.optim.AdamW(model.parameters())
            for i in range(4):
                start = time.perf_counter()
                with torch.autocast("cpu", dtype=amp, enabled=amp is not None):
                    loss = (model(x, t, y).float() - x).pow(2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                if i:  # the first step warms up
                    best[arm]["train"] = max(best[arm]["train"], 64 / (time.perf_counter() - start))
            start = time.perf_counter()
            with torch.no_grad(), torch.autocast("cpu", dtype=amp, enabled=amp is not None):
                z = sample(model.eval(), sched, 50, y=y[:50], guidance=3.0, steps=20, progress=False)
                if arm != "pixel":
                    ae.decode(z.float())
            best[arm]["sample"] = max(best[arm]["sample"], 50 / (time.perf_counter() - start))
            model.train()
    rows = [{"arm": arm, "what": ARMS[arm][0], "parameters": count_parameters(models[arm]),
             "train_images_per_second": round(b["train"], 1), "sample_images_per_second": round(b["sample"], 1),
             "train_ratio_to_pixel": round(b["train"] / best["pixel"]["train"], 2),
             "sample_ratio_to_pixel": round(b["sample"] / best["pixel"]["sample"], 2),
             "threads": args.threads, "bf16_autocast": amp is not None,
             "command": f"python scripts/latent_compare.py speed --threads {args.threads}"} for arm, b in best.items()]
    for r in rows:
        print(json.dumps(r))
    text = json.dumps(rows, indent=1) + "\n"
    atomic_write(RESULTS / "latent_speed.json", lambda tmp: Path(tmp).write_text(text))


def report(args) -> None:
    """Write the README's latent-diffusion tables (between <!-- latent:start --> and <!-- latent:end -->)
    from data/results/latent.json and latent_speed.json."""
    rows = json.loads((RESULTS / "latent.json").read_text())
    speed = json.loads((RESULTS / "latent_speed.json").read_text())
    ae = next(r for r in rows if r["arm"] == "autoencoder")
    attrs = next((r for r in rows if r["arm"] == "latent_text attributes"), None)
    arms = [r for r in rows if "fd" in r]
    minutes = {round(r["training_seconds"] / 60) for r in arms}
    out = [f"**Same wall-clock budget** ({', '.join(map(str, sorted(minutes)))} minutes each, all arms at once, one "
           "thread each: `python scripts/latent_compare.py train`; graded on 1000 guided samples, DDIM 20, s = 3: "
           "`python scripts/latent_compare.py evaluate`):", "",
           "| arm | training steps | images/s while training | FD (floor) | class accuracy | sampling 1000 | command |",
           "|---|---|---|---|---|---|---|"]
    for r in arms:
        out.append(f"| {r['what']}{', x_0 clipped' if r['clip_x0'] else ''} | {r['training_steps']} | "
                   f"{r['training_images_per_second']} | {r['fd']:.1f} ({r['fd_real_floor']:.1f}) | "
                   f"{r['class_accuracy']:.1%} | {r['sample_seconds']:.0f} s | `{r['command']}` |")
    out += ["", f"The autoencoder alone (`{AE}`, `python scripts/latent_compare.py evaluate`): reconstructions "
            f"of the 10,000 MNIST test images have MSE {ae['mse']} (PSNR {ae['psnr_db']} dB); the classifier "
            f"recognises {ae['class_accuracy_of_reconstructions']:.2%} of them (real images: "
            f"{ae['classifier_test_accuracy']:.2%}); FD {ae['fd_reconstructions_vs_real']:.1f} against real test "
            f"images (real against real: {ae['fd_real_vs_real']:.1f}). No latent model can beat that.", ""]
    if attrs:
        out += [f"Attributes ({attrs['samples_per_word']} samples per word, the text model, s = 3): ink share "
                f"{attrs['thin_mean_ink']:.3f} for \"thin\" against {attrs['thick_mean_ink']:.3f} for \"thick\" "
                f"(real thirds: {attrs['real_thin_third_mean_ink']:.3f} and {attrs['real_thick_third_mean_ink']:.3f}); "
                f"slant {attrs['upright_mean_slant']:.3f} for \"upright\" against {attrs['slanted_mean_slant']:.3f} "
                f"for \"slanted\" (real thirds: {attrs['real_upright_third_mean_slant']:.3f} and "
                f"{attrs['real_slanted_third_mean_slant']:.3f}).", ""]
    out += ["**Speed of one training step and of sampling** (`" + speed[0]["command"] + "`; untrained weights, "
            "best of interleaved rounds, batch 64 training, 50 images DDIM 20 with guidance, latents decoded):", "",
            "| arm | parameters | training images/s | ratio | sampling images/s | ratio |", "|---|---|---|---|---|---|"]
    for r in speed:
        out.append(f"| {r['what']} | {r['parameters']:,} | {r['train_images_per_second']} | "
                   f"{r['train_ratio_to_pixel']} | {r['sample_images_per_second']} | {r['sample_ratio_to_pixel']} |")
    readme = ROOT / "README.md"
    text, start, end = readme.read_text(), "<!-- latent:start -->", "<!-- latent:end -->"
    head, rest = text.split(start, 1)
    readme.write_text(f"{head}{start}\n" + "\n".join(out) + f"\n{end}{rest.split(end, 1)[1]}")
    print("\n".join(out))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("part", choices=["train", "evaluate", "speed", "report"])
    p.add_argument("--runs", type=Path, default=Path("runs/latent"))
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--num", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--sequential", action="store_true", help="train: one arm after the other (one cpujob slot)")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    {"train": train, "evaluate": evaluate, "speed": speed, "report": report}[a.part](a)
