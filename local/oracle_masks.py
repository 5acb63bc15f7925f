#!/usr/bin/env python
"""Oracle masks on the test split: the ceiling of mask-based separation with the model's STFT (``stft``).

    python local/oracle_masks.py --conf conf.yml [--kinds irm ibm wiener psm] [--stft "[512, 512, 256]"]
    python local/voice_pairs.py --conf conf.yml --exp_dirs exp/oracle/irm exp/l2l

Scores each oracle mask (asteroid_avspeech.oracle) on the test mixtures of eval_condition with
the metrics of stage 5 (without PESQ/STOI unless asked: --metrics), writes
<exp_dir>/<kind>/eval/<condition>/{all_metrics.csv,final_metrics.json} like stage 5 and
prints a markdown table of the improvements.
"""
import argparse
import logging
from pathlib import Path

import torch

from asteroid_avspeech.config import ConfigError, parse_conf, stft_sizes
from asteroid_avspeech.data.dataset import AVSpeechDataset
from asteroid_avspeech.evaluate import write_reports
from asteroid_avspeech.models.spectral import STFT
from asteroid_avspeech.oracle import ORACLE_MASKS, oracle_rows


def main() -> None:
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--exp_dir", type=Path, default=Path("exp/oracle"), help="output folder")
    extra.add_argument("--kinds", nargs="+", default=list(ORACLE_MASKS), choices=ORACLE_MASKS)
    extra.add_argument("--metrics", nargs="+", default=["si_sdr", "sdr"], help="asteroid metric names")
    conf, args = parse_conf(description=__doc__, extra=extra)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_grad_enabled(False)

    try:
        n_filters, kernel_size, stride = stft_sizes(conf)
    except ConfigError as err:
        raise SystemExit(str(err))
    condition = conf["eval"]["eval_condition"]
    mixtures_dir = Path(conf["data"]["data_dir"]) / "mixtures"
    if not (mixtures_dir / f"test_{condition}.csv").is_file():
        raise SystemExit(f"{mixtures_dir / f'test_{condition}.csv'}: missing; run stage 3 (local/make_mixtures.py)")
    dataset = AVSpeechDataset(mixtures_dir, split="test", condition=condition, segment=None,
                              visual=conf["visual"]["visual_input"], sample_rate=conf["data"]["sample_rate"],
                              fps=conf["data"]["fps"])
    stft = STFT(n_filters, kernel_size, stride, sample_rate=conf["data"]["sample_rate"])
    rows = oracle_rows(dataset, args.kinds, stft, args.metrics)
    print(f"Oracle masks, STFT {n_filters}/{kernel_size}/{stride}, test {condition} ({len(dataset)} mixtures)\n")
    print("| mask | " + " | ".join(f"{m.upper().replace('_', '-')}i (dB)" for m in args.metrics) + " |")
    print("|---" * (len(args.metrics) + 1) + "|")
    for kind, kind_rows in rows.items():
        final = write_reports(kind_rows, args.exp_dir / kind / "eval" / condition, args.metrics)
        print(f"| {kind} | " + " | ".join(f"{final[f'{m}_imp']:.2f}" for m in args.metrics) + " |")


if __name__ == "__main__":
    main()
