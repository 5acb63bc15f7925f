#!/usr/bin/env python
"""Stage 2: face track, lip crops (and optional FaceNet embeddings) of every corpus clip (resumable).

Reads <corpus_dir>/avspeech.csv and clips/, writes <data_dir>/visual/{<clip_id>/,clips.csv,dropped.csv}.
Conf keys used: corpus_dir, data_dir, workers, fps, lip_size, detect_every, max_missing_ratio,
visual_input, facenet_weights, and if present lip_scale, save_faces, device::

    python local/extract_visual.py --conf conf.yml --lip_size 88 --detect_every 10 --workers 2
"""
import argparse
import logging
from pathlib import Path

from asteroid_avspeech.config import flat, parse_conf
from asteroid_avspeech.data.visual_features import VisualConfig, extract_visual, visual_dir


def main() -> None:
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--retry_dropped", action="store_true", help="process previously dropped clips again")
    conf, args = parse_conf(description=__doc__, extra=extra)
    keys = flat(conf)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    defaults = VisualConfig()
    config = VisualConfig(
        fps=keys.get("fps", defaults.fps),
        lip_size=keys.get("lip_size", defaults.lip_size),
        lip_scale=keys.get("lip_scale", defaults.lip_scale),
        detect_every=keys.get("detect_every", defaults.detect_every),
        max_missing_ratio=keys.get("max_missing_ratio", defaults.max_missing_ratio),
        save_faces=keys.get("save_faces", defaults.save_faces),
        facenet_weights=keys.get("facenet_weights", defaults.facenet_weights),
        device=keys.get("device", defaults.device),
    )
    weights = config.facenet_weights
    if keys.get("visual_input") == "embeddings" and not (weights and Path(weights).is_file()):
        raise SystemExit(
            f"visual_input=embeddings needs FaceNet weights, but facenet_weights={weights!r} "
            "is not a file. Pass --facenet_weights PATH (InceptionResnetV1 VGGFace2 state_dict, "
            "20180402-114759-vggface2.pt) or use --visual_input lips."
        )
    summary = extract_visual(
        keys["corpus_dir"], keys["data_dir"], config, keys.get("workers", 1), args.retry_dropped
    )
    print(f"{summary} -> {visual_dir(keys['data_dir'])}")


if __name__ == "__main__":
    main()
