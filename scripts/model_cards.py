"""Write data/checkpoints/README.md (the model cards) from the checkpoints' own JSON configs and
data/results/*.json, so every number on the cards comes from a file the project produced.

    python scripts/model_cards.py
"""

import json
from pathlib import Path

from diffusion_lab.autoencoder import AutoencoderConfig
from diffusion_lab.claims import with_spread
from diffusion_lab.cli import train_command
from diffusion_lab.models import build_model, count_parameters
from diffusion_lab.results import RESULTS_DIR, load_results, replace_section
from diffusion_lab.training import saved_settings

ROOT = Path(__file__).resolve().parent.parent
CK = ROOT / "data" / "checkpoints"

PURPOSE = {
    "mnist_cfg": "MNIST, class-conditional, trained with label dropout for classifier-free guidance. "
    "The course's main model (chapters 00, 05-08).",
    "fashion_mnist_cfg": "Fashion-MNIST, class-conditional with label dropout (CFG).",
    "mnist_uncond": "MNIST, unconditional DDPM.",
    "mnist_cfg_unet": "Architecture comparison arm (chapter 08): our U-Net, t and y in every block.",
    "mnist_cfg_unet_middle": "Architecture comparison arm (chapter 08): our U-Net with t and y only in the "
    "middle blocks, as Yu 2025's minimal U-Net does.",
    "mnist_cfg_minimal": "Architecture comparison arm (chapter 08): Yu 2025's minimal U-Net (arXiv:2512.07201).",
    "mnist_ae": "The autoencoder of latent diffusion (chapter 10): 1x28x28 MNIST digits to 4x7x7 latents and back "
    "(KL-regularised, latents scaled to unit variance). Shared by mnist_latent and mnist_text.",
    "mnist_latent": "MNIST latent diffusion, class-conditional with label dropout (chapter 10): denoises mnist_ae's "
    "latents; the latent arm of scripts/latent_compare.py.",
    "mnist_text": "MNIST latent diffusion conditioned on prompts in words through cross-attention, with prompt "
    "dropout for guidance over text (chapter 11): the prompt arm of scripts/latent_compare.py.",
    "mnist_flow": "MNIST rectified flow, class-conditional with label dropout (chapter 13): the linear path, trained "
    "on the velocity; sampled with Euler (10 steps, s = 3, as its config records). The flow_unet arm of "
    "scripts/flow_compare.py.",
    "cifar10_cfg": "CIFAR-10, class-conditional with label dropout (CFG), the CIFAR-10 recipe (chapter 12).",
}


def command(cfg: dict, name: str) -> str:
    """The command that trains this checkpoint again (cli.train_command: every setting that differs from
    today's defaults), on one thread, writing where the shipped one lives."""
    on_cpu = "CPU" in cfg["training"].get("hardware", "CPU")
    threads = " --threads 1" if on_cpu else ""
    return f"{train_command(saved_settings(cfg))}{threads} --out data/checkpoints/{name}.safetensors"


def results_for(name: str) -> list[dict]:
    rows = []
    for path in sorted(RESULTS_DIR.glob("*.json")):
        if path.stem in ("samplers", "amp"):
            continue  # the sampler sweep has its own table (README, "Faster samplers")
        rows += [r for r in load_results(path.stem) if isinstance(r, dict) and r.get("checkpoint") == name
                 and "fd" in r]  # evaluation rows only (not sampling_speed's); loss_per_t, paper_ddim hold one dict
    return rows


def autoencoder_card(name: str, cfg: dict) -> str:
    t, kw = cfg["training"], cfg["model"]["kwargs"]
    model = build_model("autoencoder", **kw)
    size = (CK / f"{name}.safetensors").stat().st_size
    rec = t["test_reconstruction"]
    flags = "".join(f" --{k.replace('_', '-')} {t[k]:g}" for k in ("latent_channels", "base_channels", "kl_weight")
                    if t[k] != getattr(AutoencoderConfig, k))
    budget = (f" --steps {t['steps']}" if t["steps"] else "") + (f" --minutes {t['minutes']:g}" if t["minutes"] else "")
    return "\n".join([
        f"## {name}", "", PURPOSE.get(name, ""), "",
        "| | |", "|---|---|",
        f"| architecture | `autoencoder` {json.dumps(kw)}: image {cfg['image_shape']} -> latent "
        f"{cfg['latent_shape']} |",
        f"| parameters | {count_parameters(model):,} ({size / 1e6:.1f} MB, float32) |",
        f"| latent scale | {t['latent_scale']} (1 / std of the training latents) |",
        f"| data | {t['data_source']} |",
        f"| training | {t['steps_done']} steps of batch {t['batch_size']}, AdamW lr {t['lr']}, L1 + KL weight "
        f"{t['kl_weight']:g}, seed {t['seed']} |",
        f"| wall time, hardware | {t['seconds'] / 60:.1f} min on 1 thread of a 2-core x86-64 CPU (shared with other "
        "jobs, so slower than an idle machine) |",
        f"| test reconstruction | MSE {rec['mse']} on the [-1, 1] scale, PSNR {rec['psnr_db']} dB, first {rec['num']} "
        "test images |",
        f"| command | `python -m diffusion_lab train-autoencoder --dataset {cfg['dataset']}{flags}{budget} "
        f"--seed {t['seed']} --threads 1 --out data/checkpoints/{name}.safetensors` |",
    ]) + "\n"


def card(name: str, cfg: dict) -> str:
    if cfg["model"]["name"] == "autoencoder":
        return autoencoder_card(name, cfg)
    t = cfg["training"]
    model = build_model(cfg["model"]["name"], **cfg["model"]["kwargs"])
    size = (CK / f"{name}.safetensors").stat().st_size
    lines = [
        f"## {name}",
        "",
        PURPOSE.get(name, ""),
        "",
        "| | |",
        "|---|---|",
        f"| architecture | `{cfg['model']['name']}` {json.dumps(cfg['model']['kwargs'])} |",
        f"| parameters | {count_parameters(model):,} ({size / 1e6:.1f} MB, EMA weights, float32) |",
        f"| schedule | {cfg['schedule']['name']}, T = {cfg['schedule']['T']} |",
        f"| data | {t['data_source']} |",
        f"| training | {t['steps_done']} steps of batch {t['batch_size']}, AdamW lr {t['lr']}, EMA {t['ema_decay']}, "
        f"p_uncond {t['p_uncond'] if t['conditional'] else '-'}, bf16 autocast {t['amp']}, seed {t['seed']} |",
        f"| wall time, hardware | {t['seconds'] / 60:.1f} min on "
        + (t["hardware"] if "hardware" in t else "1 thread of a 2-core x86-64 CPU (shared with other jobs, so "
           "slower than an idle machine)") + " |",
        f"| command | `{command(cfg, name)}` |",
    ]
    rows = results_for(name)
    if rows:
        lines += ["", "| evaluation | FD (floor) | class accuracy | class entropy | within-class spread | command |",
                  "|---|---|---|---|---|---|"]
        for r in rows:
            what = f"{r['sampler']} {r['steps']} steps"
            what += f", s = {r['guidance']:g}" if r["guidance"] is not None else ""
            acc = f"{r['class_accuracy']:.1%}" if "class_accuracy" in r else "-"
            lines.append(f"| {what}, {r['num']} samples | {fd_cell(r)} | {acc} | "
                         f"{r['class_entropy']:.3f} | {r['within_class_spread']:.2f} | `{r['command']}` |")
    return "\n".join(lines) + "\n"


def fd_cell(r: dict) -> str:
    """FD (floor), each with its standard deviation (half-sampling for FD) when the row has one."""
    if "fd_std" not in r:
        return f"{r['fd']:.2f} ({r['fd_real_floor']:.2f}), no spread measured"
    return f"{r['fd']:.1f} ± {r['fd_std']:.1f} ({r['fd_real_floor']:.1f} ± {r['fd_real_floor_std']:.1f})"


def results_section() -> str:
    """The README's results tables: one row per evaluation, each with its command."""
    out = ["Measured by `python scripts/evaluate_all.py` on the shipped checkpoints. n = generated images;",
           "FD = Fréchet distance in the evaluation classifier's features, floor = real test images against real",
           "test images at the same n; ± one standard deviation: of FD by half-sampling the generated images",
           "(metrics.frechet_half_std), of the floor over other draws of real images, of accuracy (the",
           "classifier agrees with the requested class) the binomial spread of n. Two numbers differ when their",
           "gap exceeds twice the combined spread (diffusion_lab/claims.py).", ""]
    tables = [
        ("checkpoints", "Shipped models, DDIM 20 steps", ["checkpoint", "guidance"]),
        ("steps", "Quality against sampling steps (mnist_cfg, s = 1, {num} samples)", ["sampler", "steps"]),
        ("guidance", "Guidance scale: adherence against diversity (mnist_cfg, DDIM 20, {num} samples)", ["guidance"]),
        ("architecture", "Same short training budget in steps (600; 1000 for the cheaper minimal U-Net): "
         "Yu 2025's minimal U-Net against ours (DDIM 20, s = 3, {num} samples)",
         ["arm", "training_steps"]),
    ]
    for part, title, keys in tables:
        rows = load_results(part)
        if not rows:
            continue
        pr = all("precision" in r for r in rows)  # rows measured since evaluate reports precision and recall
        out += [f"**{title.format(num=rows[0]['num'])}**", "",
                "| " + " | ".join(keys) + " | n | FD ± std (floor) | "
                + ("precision (real) | recall (real) | " if pr else "")
                + "accuracy ± std | class entropy | within-class spread | command |",
                "|" + "---|" * (len(keys) + 6 + 2 * pr)]
        for r in rows:
            cells = ["-" if r.get(k) is None else str(r.get(k)) for k in keys] + [str(r["num"])]
            acc = "-"
            if "class_accuracy" in r:
                acc = with_spread(r, "class_accuracy")
            prc = (f"{r['precision']:.3f} ({r['precision_real']:.3f}) | {r['recall']:.3f} ({r['recall_real']:.3f}) | "
                   if pr else "")
            out.append("| " + " | ".join(cells) + f" | {fd_cell(r)} | {prc}{acc} | "
                       f"{r['class_entropy']:.3f} | {r['within_class_spread']:.2f} | `{r['command']}` |")
        out.append("")
    return "\n".join(out)


def update_readme() -> None:
    readme = ROOT / "docs" / "results.md"  # the results page (the README links to it)
    if "<!-- results:start -->" in readme.read_text():
        replace_section(readme, "results", results_section())


def main() -> None:
    names = sorted(p.stem for p in CK.glob("*.json") if not p.stem.startswith("classifier_"))
    total = sum(p.stat().st_size for p in CK.iterdir() if p.is_file() and p.name != "README.md")
    out = [
        "# Shipped checkpoints",
        "",
        "Trained by the project on the full official training sets (60,000 images), on a 2-core CPU. Each is a",
        "safetensors file of EMA weights plus a JSON config (`diffusion_lab.load_checkpoint` rebuilds the model",
        "from it and checks the weights' sha256). This page is generated by `python scripts/model_cards.py`;",
        "the evaluation numbers come from `python scripts/evaluate_all.py` (FD: Fréchet distance in the",
        "evaluation classifier's feature space; floor: the same distance between two halves of the real test set",
        "at the same sample count).",
        "",
        f"Total size of data/checkpoints: {total / 1e6:.1f} MB.",
        "",
    ]
    for name in names:
        out.append(card(name, json.loads((CK / f"{name}.json").read_text())))
    out += ["## Evaluation classifiers", "",
            "| dataset | test accuracy (test images) | epochs | train time | command |",
            "|---|---|---|---|---|"]
    for p in sorted(CK.glob("classifier_*.json")):
        c = json.loads(p.read_text())
        tested = c.get("test_images", "the full official test set")
        official = c.get("official_test_accuracy")  # trained on a subset: also its score on the shipped test images
        if official:
            tested += f"; {official['accuracy']:.0%} on the {official['images']} official test images shipped"
        data = "" if "--subset" in c["command"] else "DIFFUSION_LAB_DATA=<full data> "
        out.append(f"| {c['dataset']} | {c['test_accuracy']:.2%} ({tested}) | {c['epochs']} | "
                   f"{c['train_seconds'] / 60:.1f} min, {c['threads']} thread | `{data}{c['command']}` |")
    out += ["", "## CIFAR-10 (for a GPU)", "",
            "No CIFAR-10 diffusion checkpoint is shipped: none was trained without a GPU. The commands that train,",
            "grade and card one on a GPU are in [docs/cifar10_model_card.md](../../docs/cifar10_model_card.md).", ""]
    (CK / "README.md").write_text("\n".join(out))
    update_readme()
    print(f"wrote {CK / 'README.md'} ({len(names)} models, {total / 1e6:.1f} MB) and docs/results.md's results")


if __name__ == "__main__":
    main()
