"""A 2-D world for chapters 13 and 14: two moons, a small network, both paths, trained in seconds.

The maths is the package's (paths.py, training.diffusion_loss / flow_matching_loss, samplers.ddim_step,
samplers.flow_sample); only the data and the network are small enough to watch every particle.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .. import forward, paths, samplers, schedules, training
from ..embeddings import timestep_embedding


def two_moons(n: int, seed: int = 0, noise: float = 0.06) -> torch.Tensor:
    """n points (n, 2) on two interleaved half circles (the upper one and a lower one shifted right),
    centred and scaled to about [-1, 1], with Gaussian jitter of std `noise`."""
    g = torch.Generator().manual_seed(seed)
    angle = torch.rand(n, generator=g) * math.pi
    upper = torch.rand(n, generator=g) < 0.5
    x = torch.where(upper, torch.cos(angle), 1 - torch.cos(angle))
    y = torch.where(upper, torch.sin(angle), 0.5 - torch.sin(angle))
    points = torch.stack([x - 0.5, y - 0.25], dim=1) / 1.1
    return points + noise * torch.randn(n, 2, generator=g)


class ToyNet(nn.Module):
    """A network for 2-D points: the point and the timestep embedding in, 2 numbers out (the noise on the
    VP path, the velocity on the linear one). Told t as the image networks are: a step 0..999 (VP) or
    t * 1000 (linear)."""

    def __init__(self, width: int = 128, time_dim: int = 32):
        super().__init__()
        self.time_dim = time_dim
        self.net = nn.Sequential(nn.Linear(2 + time_dim, width), nn.SiLU(), nn.Linear(width, width), nn.SiLU(),
                                 nn.Linear(width, width), nn.SiLU(), nn.Linear(width, 2))

    def forward(self, x: torch.Tensor, t, y=None) -> torch.Tensor:
        t = torch.as_tensor(t, device=x.device).expand(len(x))
        return self.net(torch.cat([x, timestep_embedding(t, self.time_dim)], dim=1))


SCHEDULE = schedules.make_schedule("linear", 1000)


def train_toy(path: str, data: torch.Tensor, steps: int = 1500, batch: int = 256, lr: float = 3e-3,
              seed: int = 0) -> tuple[ToyNet, list[float]]:
    """Train a ToyNet on `data` (N, 2): eps on the VP path (training.diffusion_loss, DDPM's eq. 14) or the
    velocity on the linear path (training.flow_matching_loss). Returns (network in eval mode, losses)."""
    paths.check_path(path)
    torch.manual_seed(seed)
    net, g = ToyNet(), torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    losses = []
    for step in range(steps):
        x0 = data[torch.randint(len(data), (batch,), generator=g)]
        noise = torch.randn(batch, 2, generator=g)
        if path == "vp":
            t = torch.randint(SCHEDULE.T, (batch,), generator=g)
            loss = training.diffusion_loss(net, x0, t, noise, SCHEDULE)
        else:
            t = paths.sample_time(batch, "uniform", g).float()
            loss = training.flow_matching_loss(net, x0, t, noise)
        for group in opt.param_groups:  # cosine decay: the last steps settle the field
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return net.eval(), losses


@torch.no_grad()
def trajectories(net: ToyNet, path: str, n: int = 500, steps: int = 50, seed: int = 1):
    """Particles from N(0, I) carried to data by the deterministic sampler of each path: DDIM (trailing
    timesteps) on the VP path, Euler on the linear path. Returns (times, states (steps + 1, n, 2)), both
    on the linear path's clock and coordinates (a VP state x_t is shown as x_t / (a_t + b_t) at time
    b_t / (a_t + b_t), paths.vp_to_linear), so the two paths draw on one picture."""
    x = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))
    if path == "linear":
        ts = paths.flow_grid(steps)
        states = [x]
        samplers.flow_sample(lambda x_t, t: net(x_t, t * paths.TIME_SCALE), x, ts,
                             on_step=lambda i, x_t, x0: states.append(x_t))
        return [float(t) for t in ts], torch.stack(states)
    grid = samplers.ddim_timesteps(SCHEDULE.T, steps, "trailing")
    times, states = [], []
    for t, t_prev in zip(grid, grid[1:] + [-1]):
        state, s = paths.vp_to_linear(x, float(SCHEDULE.alpha_bar[t]))
        times.append(s)
        states.append(state)
        x, _ = samplers.ddim_step(x, net(x, t), t, t_prev, SCHEDULE)
    return times + [0.0], torch.stack(states + [x])


@torch.no_grad()
def velocity_field(net: ToyNet, t: float, lim: float = 2.0, n: int = 17):
    """The learned marginal velocity of a linear-path ToyNet at time t on an n x n grid over [-lim, lim]^2:
    (grid points (n*n, 2), velocities (n*n, 2)). Time runs from 1 to 0, so a particle moves along -v."""
    axis = torch.linspace(-lim, lim, n)
    xx, yy = torch.meshgrid(axis, axis, indexing="xy")
    points = torch.stack([xx.flatten(), yy.flatten()], dim=1)
    return points, net(points, torch.tensor(t * paths.TIME_SCALE))


def exact_velocity(points: torch.Tensor, data: torch.Tensor, t: float) -> torch.Tensor:
    """The marginal velocity of the linear path when the data set is the finite set `data` (M, 2), in closed
    form: u(x, t) = E[eps - x_0 | x_t = x] = (x - E[x_0 | x_t = x]) / t, where the posterior over the data
    points weighs x_0^(i) by N(x; (1 - t) x_0^(i), t^2 I). It averages the straight conditional velocities,
    and where two data points compete for one x the average turns: that is why the marginal paths curve."""
    d2 = (points[:, None, :] - (1 - t) * data[None]).pow(2).sum(-1)  # (N, M)
    weights = torch.softmax(-d2 / (2 * t * t), dim=1)
    return (points - weights @ data) / t


# ------------------------------------------------------------------ chapter 14: the score on the VP path


def score_fn(net: ToyNet):
    """score_at(x, t) of a VP ToyNet: its noise prediction as a score, -eps / sqrt(1 - ab_t)
    (forward.score_from_eps), for sde.walk."""
    return lambda x, t: forward.score_from_eps(net(x, torch.tensor(t)), float(SCHEDULE.alpha_bar[t]))


@torch.no_grad()
def score_field(net: ToyNet, t: int, lim: float = 2.0, n: int = 17):
    """The learned score of a VP ToyNet at timestep t on an n x n grid over [-lim, lim]^2: (points, scores)."""
    axis = torch.linspace(-lim, lim, n)
    xx, yy = torch.meshgrid(axis, axis, indexing="xy")
    points = torch.stack([xx.flatten(), yy.flatten()], dim=1)
    return points, score_fn(net)(points, t)


def exact_score(points: torch.Tensor, data: torch.Tensor, t: int) -> torch.Tensor:
    """The score of the VP path's p_t when the data set is the finite set `data` (M, 2), in closed form:
    p_t is a mixture of Gaussians N(sqrt(ab_t) x_0^(i), (1 - ab_t) I), so
    grad log p_t(x) = (sqrt(ab_t) E[x_0 | x_t = x] - x) / (1 - ab_t)."""
    ab = float(SCHEDULE.alpha_bar[t])
    d2 = (points[:, None, :] - ab**0.5 * data[None]).pow(2).sum(-1)
    weights = torch.softmax(-d2 / (2 * (1 - ab)), dim=1)
    return (ab**0.5 * (weights @ data) - points) / (1 - ab)
