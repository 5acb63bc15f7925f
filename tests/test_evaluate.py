"""Stage 5 scoring: face order for audio-visual models, best permutation for audio-only ones."""
import json

import numpy as np
import pytest
import torch

from asteroid_avspeech.evaluate import evaluate, face_order_correct

SR = 8000


class SwappedOracle(torch.nn.Module):
    """Returns the true sources of the current mixture, in the wrong order."""

    def __init__(self, dataset, use_visual: bool):
        super().__init__()
        self.dataset, self.use_visual, self.n_src, self.sample_rate = dataset, use_visual, 2, SR
        self.calls = []

    def forward_wav(self, mixture, visual=None):
        self.calls.append(visual)
        sources = next(s for m, s, _ in self.dataset.items if torch.equal(m, mixture[0]))
        return sources.flip(0)[None]


class TinySet:
    def __init__(self, n=3):
        gen = torch.Generator().manual_seed(0)
        self.items = []
        for _ in range(n):
            sources = torch.randn(2, SR, generator=gen)
            self.items.append((sources.sum(0), sources, np.ones((2, 25, 8, 8), np.uint8)))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, idx):
        return self.items[idx]

    def mixture_id(self, idx):
        return f"mix{idx}"


@pytest.mark.parametrize("use_visual", [True, False])
def test_face_order_vs_permutation(tmp_path, use_visual):
    dataset = TinySet()
    model = SwappedOracle(dataset, use_visual)
    final = evaluate(model, dataset, tmp_path, ["si_sdr"], n_examples=0, probes=False)
    assert json.loads((tmp_path / "final_metrics.json").read_text()) == final
    if use_visual:  # a swap is an error in face order
        assert final["si_sdr"] < -10 and all(v is not None for v in model.calls)
        assert final["face_order_accuracy"] == 0.0
    else:  # audio-only: no faces given, best permutation
        assert final["si_sdr"] > 50 and all(v is None for v in model.calls)
        assert "face_order_accuracy" not in final


def test_probes_score_faces_in_face_order_and_no_faces_in_the_best_order(tmp_path):
    """The oracle puts every voice on the other face whatever it is given: an error with faces, swapped
    or frozen ones, but a perfect audio-only separation (no faces: output order is free)."""
    dataset = TinySet()
    model = SwappedOracle(dataset, use_visual=True)
    final = evaluate(model, dataset, tmp_path, ["si_sdr"], n_examples=0)
    assert final["probe_swapped_si_sdr"] < -10 and final["probe_frozen_si_sdr"] < -10
    assert final["probe_no_faces_si_sdr"] > 50
    assert [v is None for v in model.calls] == [False, False, False, True] * len(dataset)


def test_face_order_correct():
    sources = torch.randn(3, SR, generator=torch.Generator().manual_seed(1))
    noisy = sources + 0.5 * torch.randn(3, SR, generator=torch.Generator().manual_seed(2))
    assert face_order_correct(noisy, sources)
    assert not face_order_correct(noisy.roll(1, dims=0), sources)  # every voice on the next face
    assert not face_order_correct(noisy[[0, 2, 1]], sources)  # two faces exchanged, one right


def test_metric_workers_give_the_same_reports(tmp_path):
    dataset = TinySet(n=4)
    finals = []
    for workers in (1, 2):
        out = tmp_path / f"workers{workers}"
        finals.append(evaluate(SwappedOracle(dataset, use_visual=True), dataset, out, ["si_sdr", "sdr"],
                               n_examples=0, probes=False, workers=workers))
        assert (out / "all_metrics.csv").read_text().count("\nmix") == 4  # one row per mixture, in order
    # the same numbers up to float rounding (BLAS thread counts differ between the processes)
    assert finals[1] == pytest.approx(finals[0], rel=1e-6) and finals[0]["n_mixtures"] == 4
    ids = [(tmp_path / f"workers{w}" / "all_metrics.csv").read_text().splitlines() for w in (1, 2)]
    assert [line.split(",")[0] for line in ids[0]] == [line.split(",")[0] for line in ids[1]]
