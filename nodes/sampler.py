"""EX-4D Wan Sampler: the published flow-matching Euler schedule on the host's own sampler."""

from __future__ import annotations

import comfy.samplers
from comfy_api.latest import io

from ..ex4d import sampling as ex4d_sampling
from ._comfy import CATEGORY
from ._validation import CheckedNode


class WanSampler(CheckedNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EX4DWanSampler",
            display_name="EX-4D Wan Sampler",
            category=CATEGORY,
            description="Flow-matching Euler sampling exactly as published: sigmas linspace(1, 0, steps + 1) "
            "shifted by 5, timestep 1000 sigma, float32 CPU noise from the seed, classifier-free guidance. "
            "Runs on the host's sampler (cond/uncond batching, memory management, previews).",
            inputs=[
                io.Model.Input("model", tooltip="The model from EX-4D Apply."),
                io.Conditioning.Input("positive", tooltip="positive from EX-4D Apply."),
                io.Conditioning.Input("negative", tooltip="negative from EX-4D Apply."),
                io.Latent.Input(
                    "latent", tooltip="latent from EX-4D Apply (its size fits the camera latents)."
                ),
                io.Int.Input(
                    "seed",
                    default=ex4d_sampling.PUBLISHED_SEED,
                    min=0,
                    max=0xFFFFFFFFFFFFFFFF,
                    control_after_generate=True,
                    tooltip="Seed of the initial noise (float32, drawn on the CPU, as published).",
                ),
                io.Int.Input(
                    "steps",
                    default=ex4d_sampling.PUBLISHED_STEPS,
                    min=1,
                    max=1000,
                    tooltip="Euler steps (published: 25).",
                ),
                io.Float.Input(
                    "cfg",
                    default=ex4d_sampling.PUBLISHED_CFG,
                    min=0.0,
                    max=100.0,
                    step=0.1,
                    tooltip="Classifier-free guidance scale (published: 5); 1 skips the negative pass.",
                ),
                io.Float.Input(
                    "shift",
                    default=ex4d_sampling.PUBLISHED_SHIFT,
                    min=0.01,
                    max=100.0,
                    step=0.01,
                    tooltip="Sigma shift s -> shift s / (1 + (shift - 1) s) of the flow-matching schedule "
                    "(published: 5).",
                ),
            ],
            outputs=[io.Latent.Output(display_name="latent")],
        )

    @classmethod
    def execute(
        cls, model, positive, negative, latent: dict, seed: int, steps: int, cfg: float, shift: float
    ) -> io.NodeOutput:
        # the host's SamplerCustom with the published sigmas and Euler: its noise (float32, CPU generator
        # seeded with the seed) is the published noise; previews, progress and memory management come along
        from comfy_extras.nodes_custom_sampler import SamplerCustom

        sigmas = ex4d_sampling.flow_match_sigmas(steps, shift)
        sampler = comfy.samplers.sampler_object("euler")
        result = SamplerCustom.execute(
            model=model,
            add_noise=True,
            noise_seed=seed,
            cfg=cfg,
            positive=positive,
            negative=negative,
            sampler=sampler,
            sigmas=sigmas,
            latent_image=latent,
        )
        return io.NodeOutput(result.args[0])


NODES = [WanSampler]
