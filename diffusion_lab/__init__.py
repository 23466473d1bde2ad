"""Diffusion Lab: diffusion models one equation per function, each beside its paper's link.

Noise schedules and the forward process, the U-Net, DDPM training and sampling, DDIM, classifier-free
guidance, evaluation (Frechet distance with its floor, precision and recall), ODE samplers (Euler,
Heun, DPM-Solver++ 2M), latent diffusion, text prompts through cross-attention, training on one
device or many through Accelerate, and flow matching: the linear path beside DDPM's (paths.py), its
Euler and Heun samplers, and a diffusion transformer (DiT).

    from diffusion_lab import make_schedule, q_sample, sample, load_checkpoint
    from diffusion_lab import TrainConfig, train, diffusion_loss, flow_matching_loss, drop_labels, ema_decay_at
"""

from .checkpoints import CheckpointError, load_checkpoint, load_pretrained, pretrained_path, save_checkpoint
from .data import DATASETS, DataError, DataNotFoundError, load_data
from .dit import DiT
from .forward import posterior, predict_x0, q_sample, q_step
from .guidance import guided_eps
from .minimal_unet import MinimalUNet
from .models import build_model, count_parameters
from .samplers import ddim_step, ddim_timesteps, ddpm_step, sample
from .schedules import SCHEDULES, Schedule, make_schedule
from .settings import fast_mode, pick, pick_device
from .training import TrainConfig, diffusion_loss, drop_labels, ema_decay_at, ema_update, flow_matching_loss, train
from .unet import UNet

__version__ = "0.1.0"

__all__ = [
    "DATASETS", "SCHEDULES", "CheckpointError", "DataError", "DataNotFoundError", "DiT", "MinimalUNet", "Schedule",
    "TrainConfig", "UNet", "build_model", "count_parameters", "ddim_step", "ddim_timesteps", "ddpm_step",
    "diffusion_loss", "drop_labels", "ema_decay_at", "ema_update", "fast_mode", "flow_matching_loss", "guided_eps",
    "load_checkpoint",
    "load_data", "load_pretrained", "make_schedule", "pick", "pick_device", "posterior", "predict_x0",
    "pretrained_path", "q_sample", "q_step", "sample", "save_checkpoint", "train",
]
