#!/usr/bin/env python
"""Stage 3: speaker-disjoint train/val/test splits and fixed val/test mixture manifests.

Reads <data_dir>/audio/clips.csv, <data_dir>/visual/clips.csv (and <corpus_dir>/meta/ if any),
writes <data_dir>/mixtures/. Training mixtures are drawn on the fly by AVSpeechDataset; only the
val/test lists are written. A rerun with the same settings is a no-op; one that would change a
written manifest fails (delete <data_dir>/mixtures or choose another data_dir).

Conf keys used: corpus_dir, data_dir, noise_dir, seed, sample_rate, snr_range, noise_gain,
val_fraction, test_fraction, n_val_mixtures, n_test_mixtures, and with defaults conditions
([2S_clean, 2S_noise, 1S_noise, 3S_clean]), ref_db (-25), peak (0.99), min_face_ratio (0)::

    python local/make_mixtures.py --conf conf.yml --n_test_mixtures 500
"""
import json
import logging

from asteroid_avspeech.config import flat, parse_conf
from asteroid_avspeech.data.manifests import DEFAULT_CONDITIONS, make_mixtures


def main() -> None:
    conf, _ = parse_conf(description=__doc__)
    keys = flat(conf)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    splits = make_mixtures(
        keys["data_dir"],
        corpus=keys.get("corpus_dir"),
        noise_dir=keys.get("noise_dir"),
        conditions=keys.get("conditions", DEFAULT_CONDITIONS),
        n_val=keys.get("n_val_mixtures", 200),
        n_test=keys.get("n_test_mixtures", 500),
        val_frac=keys.get("val_fraction", 0.1),
        test_frac=keys.get("test_fraction", 0.1),
        seed=keys.get("seed", 0),
        snr_range=keys.get("snr_range", (-5.0, 5.0)),
        ref_db=keys.get("ref_db", -25.0),
        noise_factor=keys.get("noise_gain", 0.3),
        peak=keys.get("peak", 0.99),
        min_face_ratio=keys.get("min_face_ratio", 0.0),
        sample_rate=keys.get("sample_rate", 16000),
    )
    print(json.dumps({split: len(ids) for split, ids in splits.items()}))


if __name__ == "__main__":
    main()
