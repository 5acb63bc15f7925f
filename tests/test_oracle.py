"""Tests of the oracle masks (the ceiling of mask-based separation)."""
import json

import numpy as np
import pytest
import torch
from asteroid.losses import pairwise_neg_sisdr

from asteroid_avspeech.evaluate import write_reports
from asteroid_avspeech.models.spectral import STFT
from asteroid_avspeech.oracle import ORACLE_MASKS, oracle_mask, oracle_rows, oracle_separate

SR = 16000


def _tones(freqs=(300.0, 2500.0), seconds=0.5):
    t = torch.arange(int(SR * seconds)) / SR
    return torch.stack([0.3 * torch.sin(2 * np.pi * f * t) for f in freqs])  # (n_src, time)


def _si_sdr(est, ref):
    return -pairwise_neg_sisdr(est[None], ref[None])[0].diagonal()


@pytest.mark.parametrize("kind", ORACLE_MASKS)
def test_oracle_separates_sources_apart_in_frequency(kind):
    sources = _tones()
    estimates = oracle_separate(sources.sum(0), sources, kind, STFT())
    assert estimates.shape == sources.shape
    assert bool((_si_sdr(estimates, sources) > 20).all())


def test_mask_ranges_and_sums():
    stft = STFT()
    sources = torch.randn(3, SR // 4)
    src_spec, mix_spec = stft(sources), stft(sources.sum(0)[None])[0]
    masks = {kind: oracle_mask(src_spec, mix_spec, kind) for kind in ORACLE_MASKS}
    for mask in masks.values():
        assert mask.shape == (3, 1) + mix_spec.shape[1:]
        assert float(mask.min()) >= 0.0 and float(mask.max()) <= 1.0
    assert torch.allclose(masks["wiener"].sum(0), torch.ones(1), atol=1e-4)
    assert torch.equal(masks["ibm"].sum(0), torch.ones_like(masks["ibm"][0]))  # one winner per bin
    with pytest.raises(ValueError, match="valid: irm, ibm, wiener, psm"):
        oracle_mask(src_spec, mix_spec, "cirm")


class _Mixtures:
    def __init__(self, n=2):
        self.items = [(s.sum(0), s) for s in (_tones((200.0 + 50 * i, 3000.0)) for i in range(n))]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, idx):
        mixture, sources = self.items[idx]
        return mixture.numpy(), sources.numpy(), None

    def mixture_id(self, idx):
        return f"m{idx}"


def test_rows_and_reports(tmp_path):
    rows = oracle_rows(_Mixtures(), ["irm", "ibm"], STFT(), ["si_sdr"])
    assert set(rows) == {"irm", "ibm"} and [r["mixture_id"] for r in rows["irm"]] == ["m0", "m1"]
    final = write_reports(rows["irm"], tmp_path / "irm", ["si_sdr"])
    assert final["n_mixtures"] == 2 and final["si_sdr_imp"] > 20
    assert json.loads((tmp_path / "irm" / "final_metrics.json").read_text()) == final
    assert (tmp_path / "irm" / "all_metrics.csv").read_text().startswith("mixture_id,")
    with pytest.raises(ValueError, match="Unknown oracle mask"):
        oracle_rows(_Mixtures(), ["ideal"], STFT(), ["si_sdr"])
