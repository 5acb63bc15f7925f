#!/usr/bin/env python
"""Stage 1: exact-length 16 kHz mono 16-bit wav of every corpus clip (resumable).

Reads <corpus_dir>/avspeech.csv and clips/, writes <data_dir>/audio/{<clip_id>.wav,clips.csv,dropped.csv}.
Conf keys used: corpus_dir, data_dir, workers, sample_rate, min_rms_db, max_short (default 0.1)::

    python local/extract_audio.py --conf conf.yml --corpus_dir data/corpus --workers 2
"""
import json
import logging

from asteroid_avspeech.config import flat, parse_conf
from asteroid_avspeech.data.audio_prep import extract_corpus_audio


def main() -> None:
    conf, _ = parse_conf(description=__doc__)
    keys = flat(conf)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    summary = extract_corpus_audio(
        keys["corpus_dir"],
        keys["data_dir"],
        workers=keys.get("workers", 1),
        sample_rate=keys.get("sample_rate", 16000),
        min_rms_db=keys.get("min_rms_db", -50.0),
        max_short=keys.get("max_short", 0.1),
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
