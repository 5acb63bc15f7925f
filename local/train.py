#!/usr/bin/env python
"""Stage 4: train LookingToListen on the prepared mixtures (resumes from exp_dir/checkpoints/last.ckpt).

    python local/train.py --conf conf.yml --exp_dir exp/l2l [--preset paper --lr 3.0e-5 ...]

GPUs: those in CUDA_VISIBLE_DEVICES (run.sh --id 0,1), with Lightning DDP when several; else CPU.
"""
import argparse
import logging
from pathlib import Path

from asteroid_avspeech.config import parse_conf
from asteroid_avspeech.train import train


def main() -> None:
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--exp_dir", type=Path, required=True, help="experiment directory (exp/<tag>)")
    extra.add_argument("--recipe_start", type=float, default=None,
                       help="when run.sh started (Unix seconds): training then ends in time for the recipe "
                            "to finish within recipe_minutes")
    conf, args = parse_conf(description=__doc__, extra=extra)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    best = train(conf, args.exp_dir, args.recipe_start)
    logging.info("Best model: %s", best)


if __name__ == "__main__":
    main()
