#!/usr/bin/env python
"""Separate the voice of every face of a video, in Python.

    python egs/separate_video/separate_video.py exp/l2l/best_model.pth my_clip.mp4 [out_dir]
"""
import sys
from pathlib import Path

from asteroid_avspeech.models import load_model
from asteroid_avspeech.separate import separate_video, write_video_separation


def main(model_path: str, video: str, out_dir: str = "separated") -> None:
    model = load_model(model_path)  # eval mode, CPU; pass device="cuda" below for a GPU

    # 1. In memory: one FaceSeparation per face (face order: first appearance, then left to right).
    for face in separate_video(model, video, progress=False):
        print(f"face {face.index}: frames {face.first_frame}-{face.last_frame}, "
              f"first box {face.boxes[face.first_frame].round(1).tolist()}, "
              f"{len(face.audio) / model.sample_rate:.2f} s of audio")

    # 2. To files (streamed, any length): <stem>_est<k>.wav, <stem>_faces.json, <stem>_est<k>.mp4.
    written = write_video_separation(model, video, out_dir, remux=True, force_overwrite=True, progress=False)
    for face in written:
        print(f"wrote {face.output} and {face.video_output}")
    print(f"sidecar: {Path(out_dir) / (Path(video).stem + '_faces.json')}")


if __name__ == "__main__":
    main(*sys.argv[1:])
