#!/usr/bin/env python
"""SI-SDRi per voice pair (female+female, male+male, female+male) of evaluated runs, embedded corpus.

    python local/voice_pairs.py --conf conf.yml --exp_dirs exp/l2l exp/audio_only

Reads <exp_dir>/eval/<eval_condition>/all_metrics.csv of each run, the test manifest of that
condition and the corpus metadata (corpus_dir/meta); prints a markdown table.
"""
import argparse
from pathlib import Path

from asteroid_avspeech.config import parse_conf
from asteroid_avspeech.data.synthetic.voice_pairs import markdown_table, mixture_pair_kinds, si_sdr_imp_by_pair


def main() -> None:
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--exp_dirs", type=Path, nargs="+", required=True, help="evaluated experiments")
    conf, args = parse_conf(description=__doc__, extra=extra)
    condition = conf["eval"]["eval_condition"]
    manifest = Path(conf["data"]["data_dir"]) / "mixtures" / f"test_{condition}.csv"
    kinds = mixture_pair_kinds(manifest, Path(conf["corpus"]["corpus_dir"]) / "meta")
    runs = {}
    for exp_dir in args.exp_dirs:
        metrics = exp_dir / "eval" / condition / "all_metrics.csv"
        if not metrics.is_file():
            raise SystemExit(f"{metrics}: missing; run stage 5 (local/evaluate.py --exp_dir {exp_dir}) first")
        runs[exp_dir.name] = si_sdr_imp_by_pair(metrics, kinds)
    print(markdown_table(runs), end="")


if __name__ == "__main__":
    main()
