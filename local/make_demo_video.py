#!/usr/bin/env python
"""A 2-face demo video from the generated corpus: two test speakers side by side, mixed voices.

    python local/make_demo_video.py                       # data/demo/demo_2faces.{mp4,json}, _ref1/2.wav
    python local/make_demo_video.py --seconds 10 --level_db -3 --out data/demo/loud_left
    python local/make_demo_video.py --speakers FrZ4CuTu82M,KOhWwUrHBK4 --out data/demo/male_female

Speakers come from the test split of stage 3 (``<data_dir>/mixtures/splits.json``) when it
exists, so a trained model has never heard or seen them; else the first two corpus speakers.
``--speakers LEFT,RIGHT`` names them (corpus speaker ids, the YouTube-id column of the CSV).
"""
import argparse
import json
import logging
from collections import defaultdict
from pathlib import Path
from typing import Optional, Sequence

from asteroid_avspeech.data import layout
from asteroid_avspeech.data.synthetic.side_by_side import make_side_by_side


def pick_sides(corpus: Path, splits: Path, seconds: float, clip_seconds: float = 3.0,
               speakers: Optional[Sequence[str]] = None):
    """Clip ids of two speakers (enough clips for ``seconds``), left and right: ``speakers`` (two
    ids) or the first two of the test split."""
    clips = defaultdict(list)
    for line in layout.csv_path(corpus).read_text().splitlines():
        youtube_id, start, end = line.split(",")[:3]
        clips[youtube_id].append(layout.make_clip_id(youtube_id, float(start), float(end)))
    if speakers:
        unknown = [s for s in speakers if s not in clips]
        if unknown or len(speakers) != 2:
            raise SystemExit(f"--speakers: expected two speaker ids of {layout.csv_path(corpus)}, got "
                             f"{','.join(speakers)} (unknown: {','.join(unknown) or 'none'})")
    else:
        speakers = sorted(clips)
        if splits.is_file():
            speakers = [s for s in json.loads(splits.read_text())["test"] if s in clips] or speakers
    if len(speakers) < 2:
        raise SystemExit(f"{corpus}: needs clips of two speakers; generate the corpus first (stage 0)")
    per_side = max(1, int(-(-seconds // clip_seconds)))
    return [sorted(clips[s])[:per_side] for s in speakers[:2]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus_dir", type=Path, default=Path("data/corpus"))
    parser.add_argument("--data_dir", type=Path, default=Path("data/prepared"))
    parser.add_argument("--out", type=Path, default=Path("data/demo/demo_2faces"), help="output path, no extension")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--level_db", type=float, default=0.0, help="right voice level relative to the left (dB)")
    parser.add_argument("--speakers", type=lambda text: text.split(","), default=None,
                        help="LEFT,RIGHT speaker ids (default: the first two of the test split)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sides = pick_sides(args.corpus_dir, args.data_dir / "mixtures" / "splits.json", args.seconds,
                       speakers=args.speakers)
    meta = make_side_by_side(args.corpus_dir, sides, args.out, seconds=args.seconds, level_db=args.level_db)
    logging.info("wrote %s.mp4 (%.1f s; left %s, right %s)", args.out, meta["n_samples"] / meta["sample_rate"],
                 sides[0], sides[1])


if __name__ == "__main__":
    main()
