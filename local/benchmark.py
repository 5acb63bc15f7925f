#!/usr/bin/env python
"""Benchmarks: model cost, data-prep speed and inference speed in one run, as markdown + JSON.

    python local/benchmark.py --out exp/benchmark/results.json            # full run, CPU (~10 min on 2 cores)
    python local/benchmark.py --quick --out /tmp/bench.json               # CI-sized (< 1 min)
    python local/benchmark.py --device cuda --out exp/benchmark/gpu.json  # + AMP (bf16) rows
    python local/benchmark.py --precision-check exp/l2l/best_model.pth \\
        --manifest data/prepared/mixtures/test_2S_clean.csv               # SI-SDR: fp32 vs bf16

The markdown tables go to stdout; the JSON is written atomically. What each number means:
asteroid_avspeech/benchmark.py.
"""
import argparse
import json
import logging
import sys
from pathlib import Path

import torch
import yaml

from asteroid_avspeech.benchmark import precision_delta, run_benchmark, to_markdown
from asteroid_avspeech.config import ConfigError, load_conf, stft_sizes
from asteroid_avspeech.io_utils import atomic_path
from asteroid_avspeech.models.looking_to_listen import FUSIONS, MASK_DOMAINS

#: Options whose default is the recipe's setting: option -> (conf section, key).
_CONF_DEFAULTS = {
    "batch_size": ("training", "batch_size"),
    "segment": ("training", "segment"),
    "detect_every": ("visual", "detect_every"),
    "lip_size": ("visual", "lip_size"),
    "fusion": ("model", "fusion"),
    "audio_bottleneck": ("model", "audio_bottleneck"),
    "stft": ("model", "stft"),
    "mask_domain": ("model", "mask_domain"),
    "audio_only_head": ("model", "audio_only_head"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CI-sized run: checks everything runs, not timings")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--out", type=Path, help="JSON results file")
    parser.add_argument("--presets", default="small,paper", help="comma-separated model presets")
    parser.add_argument("--conf", type=Path, default=Path("conf.yml"),
                        help="recipe conf: defaults of --batch-size, --segment, --detect-every, --lip-size, --fusion, "
                             "--audio-bottleneck, --stft, --mask-domain, --audio-only-head")
    parser.add_argument("--batch-size", type=int, help="training batch size to measure besides batch 1 (conf: batch_size)")
    parser.add_argument("--segment", type=float, help="seconds per item (conf: segment)")
    parser.add_argument("--clip-seconds", type=float, default=3.0, help="clip length for data prep and inference")
    parser.add_argument("--detect-every", type=int, help="stage-2 keyframe interval (conf: detect_every)")
    parser.add_argument("--lip-size", type=int, help="lip crop side (conf: lip_size)")
    parser.add_argument("--fusion", choices=FUSIONS, help="fusion of every model measured (conf: fusion)")
    parser.add_argument("--audio-bottleneck", type=int,
                        help="audio bottleneck of every model measured, 0: none (conf: audio_bottleneck)")
    parser.add_argument("--stft", type=yaml.safe_load, metavar="[N_FFT, WINDOW, HOP]",
                        help='STFT of every model measured, as in the conf: "[512, 400, 160]" (the paper\'s; conf: stft)')
    parser.add_argument("--mask-domain", choices=MASK_DOMAINS, help="mask domain of every model measured (conf: mask_domain)")
    parser.add_argument("--audio-only-head", type=yaml.safe_load, choices=(True, False), metavar="true|false",
                        help="audio-only head of every model measured (conf: audio_only_head)")
    parser.add_argument("--repeats", type=int, help="timed runs per measurement (default 3, --quick 1)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (paper preset)")
    parser.add_argument("--precision-check", type=Path, metavar="MODEL",
                        help="instead of benchmarking: SI-SDR of MODEL on --manifest, fp32 vs --precision")
    parser.add_argument("--manifest", type=Path, help="test manifest <split>_<nS_clean|nS_noise>.csv (stage 3)")
    parser.add_argument("--precision", default="bf16", help="optimised precision for --precision-check")
    parser.add_argument("--n-items", type=int, help="--precision-check: only the first N mixtures")
    args = parser.parse_args()
    conf = load_conf(args.conf)
    for option, (section, key) in _CONF_DEFAULTS.items():
        if getattr(args, option) is None:
            setattr(args, option, conf[section][key])
    conf["model"]["stft"] = args.stft
    try:
        args.stft = stft_sizes(conf)
    except ConfigError as err:
        parser.error(str(err))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("error: --device cuda but CUDA is not available here; use --device cpu")

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.precision_check is not None:
        results = _precision_check(args)
        print(json.dumps(results, indent=2))
    else:
        presets = [p.strip() for p in args.presets.split(",") if p.strip()]
        n_filters, kernel_size, stride = args.stft
        model_args = dict(lip_size=args.lip_size, fusion=args.fusion, audio_bottleneck=args.audio_bottleneck,
                          n_filters=n_filters, kernel_size=kernel_size, stride=stride,
                          mask_domain=args.mask_domain, audio_only_head=args.audio_only_head)
        results = run_benchmark(device=args.device, quick=args.quick, presets=presets, batch_size=args.batch_size,
                                segment=args.segment, clip_seconds=args.clip_seconds,
                                detect_every=args.detect_every, model_args=model_args, repeats=args.repeats,
                                threads=args.threads, with_compile=args.compile)
        print(to_markdown(results))
    if args.out is not None:
        with atomic_path(args.out) as tmp:
            tmp.write_text(json.dumps(results, indent=2))


def _precision_check(args: argparse.Namespace) -> dict:
    """fp32 against ``args.precision`` on a prepared test manifest."""
    from asteroid_avspeech.data.dataset import AVSpeechDataset
    from asteroid_avspeech.models import load_model

    manifest = args.manifest
    if manifest is None or not manifest.is_file() or manifest.stem.count("_") != 2:
        sys.exit(f"error: --precision-check needs --manifest, a prepared <split>_<nS_clean|nS_noise>.csv "
                 f"(got {manifest}); run stage 3 (local/make_mixtures.py) first")
    split, condition = manifest.stem.split("_", 1)
    model = load_model(args.precision_check)
    dataset = AVSpeechDataset(manifest.parent, split=split, condition=condition, segment=None,
                              visual=model.sizes["visual_kind"], sample_rate=int(model.sample_rate),
                              fps=model.fps)
    return precision_delta(model, dataset, args.precision, args.n_items, args.device)


if __name__ == "__main__":
    main()
