#!/usr/bin/env python
"""Score and time video separation on the 2-face demo video (local/make_demo_video.py).

    python local/eval_demo_video.py --model exp/l2l/best_model.pth
    python local/eval_demo_video.py --model exp/l2l/best_model.pth --threads 2 --json exp/l2l/demo_video.json

Prints the SI-SDR of each face's track, as written to its 16-bit wav, against that speaker's clean
voice (face 1 = left), the input SI-SDR (soundtrack vs voice), the improvement and the oracle
ceiling (the ideal ratio mask in the model's STFT, asteroid_avspeech.oracle), and the CPU real-time
factor of ``write_video_separation`` (face tracking and writing included) with its split: tracking,
model, the rest (decoding, lip crops, writing). RTF = processing time / video duration; below 1 is
faster than real time.
"""
import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from asteroid.losses import singlesrc_neg_sisdr

import asteroid_avspeech.separate as separate_module
from asteroid_avspeech.models import load_model
from asteroid_avspeech.oracle import oracle_separate
from asteroid_avspeech.video.decode import read_audio


def si_sdr(estimate: np.ndarray, reference: np.ndarray) -> float:
    """SI-SDR (dB) of ``estimate`` vs ``reference``, both ``(time,)``, on their common length."""
    n = min(len(estimate), len(reference))
    est, ref = (torch.from_numpy(np.ascontiguousarray(x[:n]))[None].float() for x in (estimate, reference))
    return float(-singlesrc_neg_sisdr(est, ref)[0])


class Timer:
    """Wall-clock seconds spent inside the wrapped callables."""

    def __init__(self):
        self.seconds = 0.0

    def wrap(self, fn):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
        return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("exp/l2l/best_model.pth"))
    parser.add_argument("--video", type=Path, default=Path("data/demo/demo_2faces.mp4"))
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the target is 2 cores)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--facenet_weights", type=Path, default=None, help="for models on face embeddings")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)

    model = load_model(args.model)
    config = separate_module.visual_config_for(model, facenet_weights=args.facenet_weights and str(args.facenet_weights))
    tracking, inference = Timer(), Timer()
    separate_module.track_faces = tracking.wrap(separate_module.track_faces)
    model.forward_wav = inference.wrap(model.forward_wav)
    with tempfile.TemporaryDirectory() as out_dir:
        start, cpu_start = time.perf_counter(), time.process_time()
        faces = separate_module.write_video_separation(model, args.video, out_dir, visual_config=config,
                                                       device=args.device, progress=False)
        total, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        tracks = [sf.read(str(face.output), dtype="float32")[0] for face in faces]

    mixture = read_audio(args.video, int(model.sample_rate))
    duration = len(mixture) / model.sample_rate
    stem = args.video.with_suffix("")
    refs = [sf.read(f"{stem}_ref{k}.wav", dtype="float32")[0] for k in (1, 2)]
    n = min(len(mixture), *(len(ref) for ref in refs))
    with torch.no_grad():
        oracle = oracle_separate(torch.from_numpy(mixture[:n]).float(),
                                 torch.from_numpy(np.stack([ref[:n] for ref in refs])), "irm", model.stft).numpy()
    rows = []
    for face, track, ref, ideal in zip(faces, tracks, refs, oracle):
        out, inp = si_sdr(track, ref), si_sdr(mixture, ref)
        rows.append(dict(face=face.index, si_sdr=out, input_si_sdr=inp, si_sdr_imp=out - inp,
                         oracle_irm_si_sdr_imp=si_sdr(ideal, ref) - inp))
    result = dict(model=str(args.model), video=str(args.video), n_faces=len(faces), seconds=duration,
                  threads=args.threads, device=args.device, rtf=total / duration, cpu_seconds_per_second=cpu / duration,
                  rtf_tracking=tracking.seconds / duration, rtf_model=inference.seconds / duration,
                  rtf_rest=(total - tracking.seconds - inference.seconds) / duration, faces=rows)
    print(f"{args.video} ({duration:.1f} s, {len(faces)} faces), model {args.model}")
    for row in rows:
        print(f"  face {row['face']}: SI-SDR {row['si_sdr']:6.2f} dB (input {row['input_si_sdr']:5.2f} dB, "
              f"improvement {row['si_sdr_imp']:+.2f} dB; oracle IRM {row['oracle_irm_si_sdr_imp']:+.2f} dB)")
    print(f"  RTF {result['rtf']:.3f} on {args.device} x{args.threads} threads = tracking "
          f"{result['rtf_tracking']:.3f} + model {result['rtf_model']:.3f} + decode/crops/writing {result['rtf_rest']:.3f}"
          f" (wall clock; CPU time of this process: {result['cpu_seconds_per_second']:.2f} s per second of video)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
