"""Golden data for the change strength (issue 13): what diffusers' SD3 image-to-image pipeline does
with `strength`, computed by diffusers' own code, for model/sampling/scheduler.c
(dg_schedule_first_step, dg_scale_noise) and tests/model/test_scheduler.c.

    .venv/bin/python tests/golden/make_strength.py tests/data/strength

For each case (steps N, strength) of CASES, with the tiny model's scheduler config
(tests/data/tiny-deepgen/scheduler):
  - retrieve_timesteps(scheduler, N) then StableDiffusion3Img2ImgPipeline.get_timesteps(N, strength)
    (diffusers/pipelines/stable_diffusion_3/pipeline_stable_diffusion_3_img2img.py), called unbound
    on an object that holds only the scheduler: the kept timesteps, the begin index t_start, and
    the sigma at the begin index;
  - scheduler.scale_noise(x0, timesteps[:1], noise) (schedulers/scheduling_flow_match_euler_discrete.py)
    in float32 and in bfloat16, as prepare_latents calls it, for fixed x0 and noise.
The C test keeps the same CASES table (it checks N and float32(strength) against case{k}.n / .strength).
"""
import os
import sys
import types

import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from diffusers.pipelines.stable_diffusion_3.pipeline_stable_diffusion_3_img2img import (
    StableDiffusion3Img2ImgPipeline,
    retrieve_timesteps,
)
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# (N, strength): typical values, and products that fall just below / above an integer in double
# (100·0.57 = 56.99999999999999, 100·0.58 = 58.00000000000001), strength 1 and the smallest that
# leaves one step.
CASES = [
    (4, 0.5), (4, 0.3), (28, 0.6), (28, 0.95), (50, 0.7), (50, 0.75), (50, 0.999), (50, 1.0),
    (50, 0.02), (100, 0.57), (100, 0.58), (1, 1.0), (2, 0.5),
]
SHAPE = (2, 16, 2, 3)  # [B, C, h, w] latents, as the pipeline's


def main(out_dir):
    sched = FlowMatchEulerDiscreteScheduler.from_pretrained(os.path.join(ROOT, "tests/data/tiny-deepgen/scheduler"))
    g = torch.Generator().manual_seed(1234)
    x0 = torch.randn(SHAPE, generator=g, dtype=torch.float32)
    noise = torch.randn(SHAPE, generator=g, dtype=torch.float32)
    tensors = {"x0": x0, "noise": noise}
    for k, (n, strength) in enumerate(CASES):
        p = f"case{k}."
        tensors[p + "n"] = torch.tensor([n], dtype=torch.float32)
        tensors[p + "strength"] = torch.tensor([strength], dtype=torch.float32)
        retrieve_timesteps(sched, n, "cpu")
        pipe = types.SimpleNamespace(scheduler=sched)
        timesteps, kept = StableDiffusion3Img2ImgPipeline.get_timesteps(pipe, n, strength, "cpu")
        t_start = sched.begin_index
        assert kept == n - t_start and len(timesteps) == kept
        tensors[p + "t_start"] = torch.tensor([t_start], dtype=torch.float32)
        tensors[p + "timesteps"] = timesteps.to(torch.float32).clone()
        tensors[p + "sigmas"] = sched.sigmas[t_start:].to(torch.float32).clone()
        latent_timestep = timesteps[:1].repeat(SHAPE[0])
        for dtype, name in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
            y = sched.scale_noise(x0.to(dtype), latent_timestep, noise.to(dtype))
            assert y.dtype == dtype
            tensors[p + "scaled_" + name] = y.to(torch.float32).contiguous()
    os.makedirs(out_dir, exist_ok=True)
    import diffusers

    save_file(tensors, os.path.join(out_dir, "strength.safetensors"),
              metadata={"torch": torch.__version__, "diffusers": diffusers.__version__,
                        "cases": repr(CASES)})


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests/data/strength"))
