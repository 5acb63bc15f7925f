#!/usr/bin/env python
"""Load a trained model with asteroid and separate waveforms, with and without faces.

    python egs/load_model/load_model.py exp/l2l/best_model.pth
"""
import sys
import warnings

import torch
from asteroid.models import BaseModel  # finds LookingToListen by name: no import of ours needed


def main(model_path: str) -> None:
    model = BaseModel.from_pretrained(model_path)
    print(f"{type(model).__name__}: {model.n_src} speakers, {model.sample_rate:g} Hz, {model.fps:g} fps, "
          f"visual input: {model.sizes['visual_kind']}")

    seconds = 2.0
    mixture = torch.randn(1, int(seconds * model.sample_rate)) * 0.1  # (batch, time)
    n_frames = int(seconds * model.fps)
    if model.sizes["visual_kind"] == "lips":
        # Mouth crops of each speaker: (batch, n_src, frames, H, W) uint8, made as in stage 2
        # (asteroid_avspeech.video.crops); zeros = face missing.
        visual = torch.randint(0, 256, (1, model.n_src, n_frames, model.lip_size, model.lip_size), dtype=torch.uint8)
    else:
        visual = torch.randn(1, model.n_src, n_frames, model.sizes["visual_in_dim"])
    estimates = model.separate(mixture, visual=visual)  # eval mode, no gradients
    print(f"with faces: estimates {tuple(estimates.shape)} (batch, n_src, time); output k = face k")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audio_only = model.separate(mixture)  # no faces: audio-only, arbitrary order, one warning
    print(f"without faces: {tuple(audio_only.shape)}; warning: {caught[0].message if caught else None}")


if __name__ == "__main__":
    main(*sys.argv[1:])
