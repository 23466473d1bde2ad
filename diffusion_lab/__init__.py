"""Diffusion Lab: DDPM, DDIM and classifier-free guidance, one equation per function.

    from diffusion_lab import make_schedule, q_sample, sample, load_checkpoint
"""

from .checkpoints import CheckpointError, load_checkpoint, load_pretrained, pretrained_path, save_checkpoint
from .data import DATASETS, DataNotFoundError, load_data
from .forward import posterior, predict_x0, q_sample, q_step
from .guidance import guided_eps
from .minimal_unet import MinimalUNet
from .models import build_model, count_parameters
from .samplers import ddim_step, ddim_timesteps, ddpm_step, sample
from .schedules import SCHEDULES, Schedule, make_schedule
from .settings import fast_mode, pick, pick_device
from .unet import UNet

__version__ = "0.1.0"

__all__ = [
    "DATASETS", "SCHEDULES", "CheckpointError", "DataNotFoundError", "MinimalUNet", "Schedule",
    "UNet", "build_model", "count_parameters", "ddim_step", "ddim_timesteps", "ddpm_step",
    "fast_mode", "guided_eps", "load_checkpoint", "load_data", "load_pretrained", "make_schedule",
    "pick", "pretrained_path",
    "pick_device", "posterior", "predict_x0", "q_sample", "q_step", "sample", "save_checkpoint",
]
