"""The diffusion core: schedules, the forward process, samplers, guidance and the ideal denoiser.

Everything works on one schedule tensor, ``alphas_cumprod`` (``[N]``), and on denoisers called
as ``model(x_t [B, ...], t [B], **cond) -> [B, ...]``.
"""

from course_lib.diffusion.forward import (
    PREDICTION_TYPES,
    PredictionType,
    diffusion_loss,
    loss_weight,
    q_sample,
    to_eps_x0,
    training_target,
    velocity,
)
from course_lib.diffusion.guidance import cfg_combine, concat_conditions, drop_labels, guided
from course_lib.diffusion.ideal import IdealDenoiser, ideal_denoiser
from course_lib.diffusion.sampling import (
    Denoiser,
    ddim_invert,
    ddim_step,
    ddpm_step,
    last,
    sample_ddim,
    sample_ddpm,
    sample_ode,
)
from course_lib.diffusion.schedules import (
    alphas_cumprod_from_betas,
    alphas_cumprod_from_sigmas,
    betas_from_alphas_cumprod,
    cosine_betas,
    karras_sigmas,
    linear_betas,
    log_linear_sigmas,
    make_schedule,
    sigmas_from_alphas_cumprod,
    timesteps,
)

__all__ = [
    "PREDICTION_TYPES",
    "Denoiser",
    "IdealDenoiser",
    "PredictionType",
    "alphas_cumprod_from_betas",
    "alphas_cumprod_from_sigmas",
    "betas_from_alphas_cumprod",
    "cfg_combine",
    "concat_conditions",
    "cosine_betas",
    "ddim_invert",
    "ddim_step",
    "ddpm_step",
    "diffusion_loss",
    "drop_labels",
    "guided",
    "ideal_denoiser",
    "karras_sigmas",
    "last",
    "linear_betas",
    "log_linear_sigmas",
    "loss_weight",
    "make_schedule",
    "q_sample",
    "sample_ddim",
    "sample_ddpm",
    "sample_ode",
    "sigmas_from_alphas_cumprod",
    "timesteps",
    "to_eps_x0",
    "training_target",
    "velocity",
]
