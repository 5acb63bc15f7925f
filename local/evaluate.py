#!/usr/bin/env python
"""Stage 5: evaluate a model on a fixed test manifest (asteroid metrics + video probes).

    python local/evaluate.py --conf conf.yml --exp_dir exp/l2l
    python local/evaluate.py --conf conf.yml --exp_dir exp/l2l --model_path other.pth \\
        --manifest data/prepared/mixtures/test_2S_noise.csv

Writes <exp_dir>/eval/<condition>/{all_metrics.csv,final_metrics.json,examples/}.
"""
import argparse
import json
import logging
import re
from pathlib import Path

import torch

from asteroid_avspeech.config import parse_conf
from asteroid_avspeech.data.dataset import AVSpeechDataset
from asteroid_avspeech.evaluate import evaluate
from asteroid_avspeech.models import load_model

_MANIFEST = re.compile(r"^(train|val|test)_(\d+S_(?:clean|noise))\.csv$")


def main() -> None:
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--exp_dir", type=Path, required=True, help="experiment directory (exp/<tag>)")
    extra.add_argument("--model_path", type=Path, help="model package (default: <exp_dir>/best_model.pth)")
    extra.add_argument("--manifest", type=Path, help="a prepared manifest <split>_<condition>.csv "
                       "(default: the test manifest of eval_condition)")
    conf, args = parse_conf(description=__doc__, extra=extra)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    manifest = args.manifest or Path(conf["data"]["data_dir"]) / "mixtures" / f"test_{conf['eval']['eval_condition']}.csv"
    match = _MANIFEST.match(manifest.name)
    if match is None or not manifest.is_file():
        raise SystemExit(f"{manifest}: not a prepared manifest <split>_<nS_clean|nS_noise>.csv; run stage 3 "
                         "(local/make_mixtures.py) or pass --manifest")
    split, condition = match.groups()
    model = load_model(args.model_path or args.exp_dir / "best_model.pth")
    dataset = AVSpeechDataset(manifest.parent, split=split, condition=condition, segment=None,
                              visual=conf["visual"]["visual_input"], sample_rate=conf["data"]["sample_rate"],
                              fps=conf["data"]["fps"])
    if model.n_src != dataset.n_src:
        raise SystemExit(f"{manifest} has {dataset.n_src} speakers per mixture but the model separates "
                         f"{model.n_src}: pick a matching --manifest or eval_condition")
    final = evaluate(model, dataset, args.exp_dir / "eval" / condition, conf["eval"]["metrics"],
                     n_examples=conf["eval"]["n_save_examples"], workers=conf["corpus"]["workers"],
                     device="cuda" if torch.cuda.is_available() else "cpu")
    print(json.dumps(final, indent=2))


if __name__ == "__main__":
    main()
