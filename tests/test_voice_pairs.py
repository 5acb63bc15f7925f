"""Tests of the per voice-pair breakdown of evaluation results."""
import json

import pytest

from asteroid_avspeech.data.synthetic.voice_pairs import (
    markdown_table, mixture_pair_kinds, pair_kind, si_sdr_imp_by_pair, voice_sex)


def test_voice_sex_and_pair_kind():
    assert voice_sex("en-us+f3") == "female" and voice_sex("en-gb-x-rp+m3") == "male"
    assert voice_sex("en-us+klatt3") == "male"
    assert pair_kind(["female", "female"]) == "female+female"
    assert pair_kind(["male", "female"]) == "female+male"
    assert pair_kind(["male", "male", "male"]) == "male+male"


def test_breakdown_from_manifest_metadata_and_metrics(tmp_path):
    meta = tmp_path / "meta"
    meta.mkdir()
    for clip, voice in (("a", "en+f2"), ("b", "en-us+f1"), ("c", "en-us+m7")):
        (meta / f"{clip}.json").write_text(json.dumps({"voice_id": voice}))
    manifest = tmp_path / "test_2S_clean.csv"
    manifest.write_text("mixture_id,n_src,clip_1,clip_2\nm0,2,a,b\nm1,2,a,c\nm2,2,c,b\n")
    metrics = tmp_path / "all_metrics.csv"
    metrics.write_text("mixture_id,input_si_sdr,si_sdr\nm0,0.5,6.5\nm1,-1.0,3.0\nm2,1.0,3.0\n")
    kinds = mixture_pair_kinds(manifest, meta)
    assert kinds == {"m0": "female+female", "m1": "female+male", "m2": "female+male"}
    by_pair = si_sdr_imp_by_pair(metrics, kinds)
    assert by_pair == {"female+female": [6.0], "male+male": [], "female+male": [4.0, 2.0]}
    table = markdown_table({"av": by_pair})
    assert "| female+female | 1 | 6.00 |" in table and "| male+male | 0 | - |" in table
    assert "| female+male | 2 | 3.00 |" in table
    (meta / "c.json").unlink()
    with pytest.raises(FileNotFoundError, match="c.json: no metadata for clip c"):
        mixture_pair_kinds(manifest, meta)
