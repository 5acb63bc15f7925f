#!/usr/bin/env python
"""Stage 6: <exp_dir>/publish_dir/model.pth (asteroid's save_publishable) and rows in RESULTS.md.

    python local/publish.py --conf conf.yml --exp_dir exp/l2l
"""
import argparse
import logging
from pathlib import Path

from asteroid_avspeech.config import parse_conf
from asteroid_avspeech.publish import append_results, load_evaluated, publish


def main() -> None:
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--exp_dir", type=Path, required=True, help="experiment directory (exp/<tag>)")
    extra.add_argument("--results", type=Path, default=Path("RESULTS.md"), help="results table to append to")
    conf, args = parse_conf(description=__doc__, extra=extra)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    condition = conf["eval"]["eval_condition"]
    metrics, package = load_evaluated(args.exp_dir, condition)
    path = publish(args.exp_dir, conf, metrics, package)
    append_results(args.results, args.exp_dir.name, condition, conf, metrics, package)
    logging.info("Published %s; results appended to %s", path, args.results)


if __name__ == "__main__":
    main()
