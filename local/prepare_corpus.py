#!/usr/bin/env python
"""Stage 0: the clips, in AVSpeech layout, plus the noise folder for the +noise conditions.

    python local/prepare_corpus.py --conf conf.yml                       # corpus: synthetic (default)
    python local/prepare_corpus.py --conf conf.yml --corpus avspeech --avspeech_csv avspeech_train.csv

synthetic: generates the embedded talking-face corpus offline (local/generate_corpus.py has all options).
avspeech:  downloads only the listed segments with yt-dlp (local/download_avspeech.py has all options).
Both resume: finished clips are kept.
"""
import logging
from pathlib import Path

from asteroid_avspeech.config import parse_conf


def main() -> None:
    conf, _ = parse_conf(description=__doc__)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    c = conf["corpus"]
    corpus_dir = Path(c["corpus_dir"])
    if c["corpus"] == "synthetic":
        from asteroid_avspeech.data.synthetic.corpus import CorpusConfig, generate_corpus

        cache = {"cache_dir": str(c["face_cache"])} if c["face_cache"] else {}
        cfg = CorpusConfig(seconds=c["clip_seconds"], sample_rate=conf["data"]["sample_rate"],
                           fps=conf["data"]["fps"], **cache)
        jobs = generate_corpus(corpus_dir, c["n_speakers"], c["clips_per_speaker"], c["seed"], cfg, workers=c["workers"])
        logging.info("Corpus of %d clips in %s", len(jobs), corpus_dir)
    elif c["corpus"] == "avspeech":
        from asteroid_avspeech.data.download import download_corpus

        if not c["avspeech_csv"]:
            raise SystemExit("corpus: avspeech needs --avspeech_csv PATH (the official avspeech_train.csv "
                             "or avspeech_test.csv)")
        download_corpus(Path(c["avspeech_csv"]), corpus_dir, workers=c["workers"], shard=c["shard"],
                        n_shards=c["n_shards"], fps=conf["data"]["fps"],
                        sample_rate=conf["data"]["sample_rate"])
    else:
        raise SystemExit(f"Unknown corpus {c['corpus']!r}: use synthetic or avspeech.")

    noise_dir = Path(c["noise_dir"])
    if not (noise_dir / "noise.csv").is_file():
        from asteroid_avspeech.data.synthetic.noise import generate_noise

        generate_noise(noise_dir, seed=c["seed"], sample_rate=conf["data"]["sample_rate"])
    logging.info("Noise clips in %s", noise_dir)


if __name__ == "__main__":
    main()
