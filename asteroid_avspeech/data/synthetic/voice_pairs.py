"""Per voice-pair results on the embedded corpus: which mixtures only the faces can untangle.

Two voices of different sex differ in pitch, which an audio-only model separates well; two
voices of the same sex are where the faces matter. The sex of a synthetic voice is its espeak-ng
variant (``en-us+f3``: female; ``m*`` and the ``klatt*`` variants: male).
"""
import csv
import json
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

PAIR_KINDS = ("female+female", "male+male", "female+male")


def voice_sex(voice_id: str) -> str:
    """``"female"`` or ``"male"`` from a corpus voice id ``accent+variant``."""
    return "female" if voice_id.rsplit("+", 1)[-1].startswith("f") else "male"


def pair_kind(sexes: Sequence[str]) -> str:
    """``"female+female"``, ``"male+male"`` or ``"female+male"`` for the voices of a mixture."""
    kinds = sorted(set(sexes))
    return f"{kinds[0]}+{kinds[0]}" if len(kinds) == 1 else "female+male"


def mixture_pair_kinds(manifest: Path, meta_dir: Path) -> Dict[str, str]:
    """Mixture id -> pair kind, from a stage-3 manifest and the corpus' per-clip JSON metadata.

    Raises:
        FileNotFoundError: a clip has no metadata (not the embedded corpus, or another corpus dir).
    """
    kinds = {}
    with open(manifest, newline="") as f:
        for row in csv.DictReader(f):
            clips = [row[f"clip_{k + 1}"] for k in range(int(row["n_src"]))]
            sexes = []
            for clip in clips:
                meta = Path(meta_dir) / f"{clip}.json"
                if not meta.is_file():
                    raise FileNotFoundError(f"{meta}: no metadata for clip {clip}; voice pairs need the "
                                            "embedded corpus (pass its --corpus_dir)")
                sexes.append(voice_sex(json.loads(meta.read_text())["voice_id"]))
            kinds[row["mixture_id"]] = pair_kind(sexes)
    return kinds


def si_sdr_imp_by_pair(all_metrics: Path, kinds: Dict[str, str]) -> Dict[str, List[float]]:
    """Pair kind -> per-mixture SI-SDR improvements (dB) read from stage 5's ``all_metrics.csv``."""
    out: Dict[str, List[float]] = {kind: [] for kind in PAIR_KINDS}
    with open(all_metrics, newline="") as f:
        for row in csv.DictReader(f):
            out[kinds[row["mixture_id"]]].append(float(row["si_sdr"]) - float(row["input_si_sdr"]))
    return out


def markdown_table(runs: Dict[str, Dict[str, List[float]]]) -> str:
    """One row per pair kind (mixture count, mean SI-SDRi of each run), as markdown."""
    names = list(runs)
    lines = ["| voice pair | mixtures | " + " | ".join(f"{n} SI-SDRi (dB)" for n in names) + " |",
             "|---|---|" + "---|" * len(names)]
    for kind in PAIR_KINDS:
        counts = {len(runs[n][kind]) for n in names}
        means = [f"{np.mean(runs[n][kind]):.2f}" if runs[n][kind] else "-" for n in names]
        lines.append(f"| {kind} | {'/'.join(map(str, sorted(counts)))} | " + " | ".join(means) + " |")
    return "\n".join(lines) + "\n"
