"""Tests of the Looking-to-Listen model, its visual encoder, STFT and serialization."""
import asteroid.models
import pytest
import torch
from asteroid.dsp.overlap_add import LambdaOverlapAdd
from asteroid.models import BaseModel
from asteroid_filterbanks import STFTFB, Decoder, Encoder
from scipy.signal import get_window

from asteroid_avspeech.losses import CompressedSpectrogramMSE
from asteroid_avspeech.models import PRESETS, LookingToListen, VisualEncoder, load_model
from asteroid_avspeech.models.looking_to_listen import scale_to_mixture
from asteroid_avspeech.models.spectral import (STFT, magnitude_share_filter, overlap_add, power_compress, power_decompress,
                                               synthesis_window)

SR, FPS = 16000, 25
TINY = dict(
    preset="small", audio_channels=4, audio_out_channels=2, audio_kernels=[[3, 3]],
    audio_dilations=[[2, 1]], lip_channels=[4], visual_feat_dim=8, visual_channels=8,
    visual_kernels=[3], visual_dilations=[1], lstm_hidden=8, fc_dims=[16],
)


def _register(cls):
    try:
        asteroid.models.get(cls.__name__)
    except ValueError:
        asteroid.models.register_model(cls)


def _lips(batch, n_src, seconds, size=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    frames = round(seconds * FPS)
    return torch.randint(1, 256, (batch, n_src, frames, size, size), generator=gen,
                         dtype=torch.uint8)


def _set_constant_mask(model, real, imag):
    """Make the mask the constant ``real + j imag`` for every speaker, frame and bin."""
    n_freqs = model.stft.n_freqs
    with torch.no_grad():
        model.mask_layer.weight.zero_()
        bias = model.mask_layer.bias.view(model.n_src, 2, n_freqs)
        bias[:, 0], bias[:, 1] = real, imag


@pytest.mark.parametrize("n_src", [1, 2, 3])
def test_shapes_odd_length_any_n_src(n_src):
    torch.manual_seed(0)
    model = LookingToListen(n_src=n_src, **TINY)
    time = int(1.37 * SR)
    out = model(torch.randn(2, time), _lips(2, n_src, 1.37))
    assert out.shape == (2, n_src, time)
    assert model(torch.randn(2, 1, time)).shape == (2, n_src, time)  # no faces
    assert model(torch.randn(time)).shape == (1, n_src, time)
    assert torch.isfinite(out).all()


def test_embeddings_visual_kind_and_shape_errors():
    model = LookingToListen(n_src=2, **{**TINY, "visual_kind": "embeddings", "visual_in_dim": 32})
    wav = torch.randn(1, SR)
    assert model(wav, torch.randn(1, 2, FPS, 32)).shape == (1, 2, SR)
    with pytest.raises(ValueError, match="n_src=2"):
        model(wav, torch.randn(1, 3, FPS, 32))
    with pytest.raises(ValueError, match="frames"):
        model(wav, torch.randn(1, 2, 2 * FPS, 32))  # 2 s of video for 1 s of audio
    with pytest.raises(ValueError, match="mono"):
        model(torch.randn(1, 2, SR))
    with pytest.raises(ValueError, match="NaN or infinite"):
        model.forward_wav(torch.tensor([0.1, float("nan")]).repeat(SR // 2)[None])


def test_unknown_preset_lists_valid_ones():
    with pytest.raises(ValueError) as err:
        LookingToListen(preset="huge")
    for name in PRESETS:
        assert name in str(err.value)


def test_paper_preset_size_and_one_training_step():
    torch.manual_seed(0)
    model = LookingToListen(n_src=2, preset="paper")
    n_params = sum(p.numel() for p in model.parameters())
    assert abs(n_params - 16.5e6) / 16.5e6 < 0.05, n_params
    assert model.visual_encoder.kind == "embeddings" and len(model.audio_stream.net) == 15 * 3
    time = SR // 2
    out = model(torch.randn(1, time), torch.randn(1, 2, round(0.5 * FPS), 512))
    assert out.shape == (1, 2, time)
    out.pow(2).mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("time", [1, 399, 401, int(1.37 * SR)])
def test_stft_round_trip(time):
    stft = STFT(sample_rate=SR)
    wav = torch.randn(2, time)
    spec = stft(wav)
    assert spec.shape == (2, 2, stft.n_frames(time), 257)
    assert (stft.inverse(spec, time) - wav).abs().max() < 1e-4
    back = stft.inverse(power_decompress(power_compress(spec)), time)
    assert (back - wav).abs().max() < 1e-4


@pytest.mark.parametrize("sizes", [(512, 400, 160), (768, 768, 256), (512, 512, 256)])
def test_stft_is_asteroid_filterbanks_stftfb(sizes):
    """The FFT STFT computes ``Encoder(STFTFB)`` / ``Decoder(STFTFB)``: spectra, waveforms and gradients."""
    n_filters, kernel, hop = sizes
    stft = STFT(*sizes, sample_rate=SR)
    analysis = get_window("hann", kernel)
    encoder = Encoder(STFTFB(n_filters, kernel, hop, window=analysis, sample_rate=SR))
    decoder = Decoder(STFTFB(n_filters, kernel, hop, window=synthesis_window(analysis, hop), sample_rate=SR))
    time = SR // 2 + 37
    wav = torch.randn(3, time)
    frames = stft.n_frames(time)
    right = (frames - 1) * hop + kernel - time - stft.left_pad
    expected = encoder(torch.nn.functional.pad(wav[:, None], (stft.left_pad, right)))
    expected = expected.reshape(3, 2, stft.n_freqs, frames).transpose(-1, -2)
    torch.testing.assert_close(stft(wav), expected, rtol=1e-5, atol=1e-5)
    spec = torch.randn(3, 2, frames, stft.n_freqs, requires_grad=True)
    ref_spec = spec.detach().clone().requires_grad_(True)
    out = stft.inverse(spec, time)
    ref = decoder(ref_spec.transpose(-1, -2).reshape(3, -1, frames)).reshape(3, -1)[:, stft.left_pad:][:, :time]
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    grad = torch.randn_like(out)
    out.backward(grad)
    ref.backward(grad)
    torch.testing.assert_close(spec.grad, ref_spec.grad, rtol=1e-5, atol=1e-5)


def test_stft_sizes_checked_and_overlap_add_is_fold():
    with pytest.raises(ValueError, match="even and at least the window"):
        STFT(511, 400, 160)
    with pytest.raises(ValueError, match="even and at least the window"):
        STFT(256, 400, 160)
    frames = torch.randn(2, 7, 400)
    fold = torch.nn.functional.fold(frames.transpose(1, 2), (1, 6 * 160 + 400), (1, 400), stride=(1, 160))
    torch.testing.assert_close(overlap_add(frames, 160), fold.reshape(2, -1))


def test_package_with_the_filterbank_stft_loads(tmp_path):
    """Packages saved before the FFT STFT also hold asteroid-filterbanks' DFT filters; they load, same outputs."""
    torch.manual_seed(0)
    model = LookingToListen(n_src=2, **TINY).eval()
    package = model.serialize()
    analysis = get_window("hann", 400)
    for name, window in (("encoder", analysis), ("decoder", synthesis_window(analysis, 160))):
        filterbank = Encoder(STFTFB(512, 400, 160, window=window, sample_rate=SR))
        package["state_dict"].update({f"stft.{name}.{key}": value for key, value in filterbank.state_dict().items()})
    assert "stft.decoder.filterbank._filters" in package["state_dict"]
    path = tmp_path / "filterbank_stft.pth"
    torch.save(package, path)
    wav, lips = torch.randn(1, SR), _lips(1, 2, 1.0)
    assert torch.equal(load_model(path).forward_wav(wav, lips), model.forward_wav(wav, lips))


def test_stft_stays_float32_under_autocast():
    stft = STFT(sample_rate=SR)
    wav = torch.randn(2, SR // 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        spec = stft(wav.bfloat16())
        back = stft.inverse(spec, wav.shape[-1])
    assert spec.dtype == back.dtype == torch.float32
    # float32 from here on: only the bfloat16 rounding of the input remains (~56 dB SNR)
    assert (back - wav.bfloat16().float()).abs().max() < 1e-4


def test_compression_keeps_phase_and_compresses_magnitude():
    spec = torch.tensor([3.0, 4.0]).view(2, 1, 1)  # 3 + 4j, magnitude 5
    comp = power_compress(spec, power=0.3)
    assert torch.allclose(comp.norm(dim=0), torch.tensor(5.0 ** 0.3), atol=1e-5)
    assert torch.allclose(comp[1] / comp[0], torch.tensor(4.0 / 3.0))


def test_identity_mask_gives_input_back():
    model = LookingToListen(n_src=2, **TINY).eval()
    _set_constant_mask(model, 1.0, 0.0)
    wav = torch.randn(1, int(1.37 * SR))
    out = model(wav, _lips(1, 2, 1.37))
    assert (out - wav.unsqueeze(1)).abs().max() < 1e-4


def test_mask_is_unbounded_and_rotates_phase():
    model = LookingToListen(n_src=1, **TINY).eval()
    wav = torch.randn(1, SR)
    _set_constant_mask(model, -1.0, 0.0)  # a sigmoid/tanh-bounded mask cannot reach -1
    assert (model(wav) + wav.unsqueeze(1)).abs().max() < 1e-4
    _set_constant_mask(model, 0.0, 1.0)  # multiply by j: a 90 degree rotation
    comp = power_compress(model.stft(wav))
    masks = model.estimate_masks(comp, None, wav.shape[-1])
    rotated = model.apply_masks(comp, masks)[:, 0]
    assert torch.allclose(rotated[:, 0], -comp[:, 1], atol=1e-5)
    assert torch.allclose(rotated[:, 1], comp[:, 0], atol=1e-5)
    _set_constant_mask(model, 2.0, 0.0)  # gain > 1 (compressed domain: 2^(1/0.3))
    assert torch.allclose(model(wav)[0, 0], wav[0] * 2 ** (1 / 0.3), rtol=1e-3, atol=1e-3)


def test_linear_mask_domain_scales_the_plain_stft():
    model = LookingToListen(n_src=2, mask_domain="linear", **TINY).eval()
    wav = torch.randn(1, SR)
    _set_constant_mask(model, 1.0, 0.0)
    assert (model(wav, _lips(1, 2, 1.0)) - wav.unsqueeze(1)).abs().max() < 1e-4
    _set_constant_mask(model, 2.0, 0.0)  # linear domain: the waveform is scaled by the mask itself
    assert torch.allclose(model(wav)[0, 1], 2 * wav[0], atol=1e-4)
    with pytest.raises(ValueError, match="valid: compressed, linear"):
        LookingToListen(n_src=2, mask_domain="log", **TINY)


def test_magnitude_share_filter_splits_the_mixture_by_the_estimates_shares():
    mixture = torch.randn(1, 2, 5, 9)
    share = torch.rand(1, 1, 1, 5, 9)
    exact = torch.cat([share, 1 - share], dim=1) * mixture.unsqueeze(1)  # estimates that add up to the mixture
    assert torch.allclose(magnitude_share_filter(exact, mixture), exact, atol=1e-3)
    assert torch.allclose(magnitude_share_filter(mixture.unsqueeze(1), mixture), mixture.unsqueeze(1), atol=1e-3)
    half = magnitude_share_filter(0.5 * mixture.unsqueeze(1), mixture)  # one estimate, half the mixture
    assert torch.allclose(half, 0.5 * mixture.unsqueeze(1), atol=1e-3)  # the residual keeps the other half
    filtered = magnitude_share_filter(torch.randn(1, 3, 2, 5, 9), mixture)
    magnitude = filtered.pow(2).sum(dim=2).sqrt().sum(dim=1)
    assert (magnitude <= mixture.pow(2).sum(dim=1).sqrt() + 1e-5).all()  # never more than the mixture, bin by bin


def test_post_filter_runs_in_eval_mode_only_and_round_trips(tmp_path):
    torch.manual_seed(0)
    model = LookingToListen(n_src=2, mask_domain="linear", post_filter=True, **TINY)
    plain = LookingToListen(n_src=2, mask_domain="linear", **TINY)
    plain.load_state_dict(model.state_dict())
    wav, lips = torch.randn(1, SR), _lips(1, 2, 1.0)
    model.eval(), plain.eval()
    filtered, raw = model(wav, lips), plain(wav, lips)
    assert not torch.allclose(filtered, raw, atol=1e-4)
    stft = model.stft
    spec = stft(wav)[0]
    expected = magnitude_share_filter(stft(raw[0])[None], spec[None])[0]
    assert torch.allclose(filtered[0], stft.inverse(expected, SR), atol=1e-4)
    model.train(), plain.train()
    torch.manual_seed(1)
    trained = model(wav, lips)
    torch.manual_seed(1)
    assert torch.allclose(trained, plain(wav, lips), atol=1e-6)  # the loss sees the masked spectrograms
    path = tmp_path / "post_filter.pth"
    torch.save(model.serialize(), path)
    assert load_model(path).post_filter and not plain.post_filter


def test_silence_gives_finite_gradients():
    model = LookingToListen(n_src=2, **TINY)
    loss = CompressedSpectrogramMSE()
    silence = torch.zeros(1, SR)
    est = model(silence, _lips(1, 2, 1.0))
    loss(est, torch.zeros(1, 2, SR)).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_visual_upsampling_follows_time():
    model = LookingToListen(n_src=1, **TINY)
    frames = model.stft.n_frames(3 * SR)
    index = model._upsample_indices(3 * FPS, frames, "cpu")
    assert index.shape == (frames,) and index[0] == 0 and index[-1] == 3 * FPS - 1
    assert (index.diff() >= 0).all()
    centres = model.stft.frame_centres(frames).clamp(min=0) / SR
    assert ((centres * FPS).floor().long().clamp(max=74) == index).all()


def test_faces_change_the_output_and_order_follows_faces():
    torch.manual_seed(0)
    model = LookingToListen(n_src=2, **TINY).eval()
    wav, lips = torch.randn(1, SR), _lips(1, 2, 1.0)
    out = model.forward_wav(wav, lips)
    swapped = model.forward_wav(wav, lips.flip(1))
    assert not torch.allclose(out, model.forward_wav(wav))
    assert not torch.allclose(out, swapped)


def test_visual_encoder_missing_faces_are_zero_and_uint8_equals_float():
    torch.manual_seed(0)
    enc = VisualEncoder(kind="lips", feat_dim=8, lip_channels=[4, 4]).eval()
    lips = _lips(2, 2, 1.0)
    lips[0, 1, 3:7] = 0  # face missing in frames 3..6 of speaker 1
    feats = enc(lips)
    assert feats.shape == (2, 2, FPS, 8)
    assert (feats[0, 1, 3:7] == 0).all() and (feats[0, 1, 7:].abs().sum(-1) > 0).all()
    assert torch.allclose(enc(lips.float() / 255.0), feats, atol=1e-6)
    emb = VisualEncoder(kind="embeddings", feat_dim=8, in_dim=32)
    vectors = torch.randn(1, 2, 10, 32)
    vectors[0, 0, 4] = 0
    out = emb(vectors)
    assert (out[0, 0, 4] == 0).all() and (out[0, 0, 3] != 0).any()
    with pytest.raises(TypeError, match="LookingToListen"):
        emb.forward_wav(torch.randn(1, SR))
    with pytest.raises(ValueError, match="lips, embeddings"):
        VisualEncoder(kind="faces")


def test_forward_wav_eval_mode_deterministic_and_flag_restored():
    torch.manual_seed(0)
    model = LookingToListen(n_src=2, **TINY)
    model.train()
    wav, lips = torch.randn(2, 1, SR), _lips(2, 2, 1.0)
    first = model.forward_wav(wav, lips)
    assert model.training
    second = model.forward_wav(wav[:1], lips[:1])  # BatchNorm stats must not depend on batch
    assert torch.allclose(first[:1], second, atol=1e-5)
    assert not first.requires_grad
    model.eval()
    assert torch.allclose(scale_to_mixture(model(wav, lips), wav[:, 0]), first, atol=1e-6)
    assert not model.forward_wav(wav).requires_grad and not model.training


def test_inference_gives_each_voice_its_level_in_the_mixture():
    gen = torch.Generator().manual_seed(0)
    voices = torch.randn(2, 2, SR, generator=gen) * torch.tensor([[1.0], [0.2]])
    est = 30 * voices  # the arbitrary level of a scale-invariant loss
    est[1, 0] += 0.05 * voices[1, 1]  # some leakage
    scaled = scale_to_mixture(est, voices.sum(1))
    assert ((scaled - voices).norm(dim=-1) / voices.norm(dim=-1)).max() < 0.1
    # face 2 silent: what leaked into its output stays 30 dB down instead of rising to voice 1's level
    silent = scale_to_mixture(torch.stack([30 * voices[0, 0], voices[0, 0]])[None], voices[:1, 0])
    assert torch.allclose(silent[0, 1].norm() / voices[0, 0].norm(), torch.tensor(1 / 31), rtol=1e-3)
    assert not scale_to_mixture(torch.zeros(1, 2, SR), voices[:1, 0]).any()
    # one voice inverted (SI-SDR does not see the sign): the sum of the outputs is no longer the mixture
    flipped = scale_to_mixture(est * torch.tensor([[-1.0], [1.0]]), voices.sum(1))
    assert ((flipped - voices).norm(dim=-1) / voices.norm(dim=-1)).max() < 0.1
    model = LookingToListen(n_src=1, **TINY)
    _set_constant_mask(model, 2.0, 0.0)  # the network's output is 2^(1/0.3) ~ 10x the mixture
    wav = torch.randn(1, SR, generator=gen)
    assert model.eval()(wav).abs().max() > 5 * wav.abs().max()
    assert torch.allclose(model.forward_wav(wav)[0, 0], wav[0], atol=1e-4)


def test_asteroid_separate_and_overlap_add():
    model = LookingToListen(n_src=2, **TINY)
    wav = torch.randn(1, 1, int(1.37 * SR))
    assert model.separate(wav).shape == (1, 2, wav.shape[-1])
    model.train()  # asteroid-infer never calls .eval(): no-grad chunks must run in eval mode
    ola = LambdaOverlapAdd(model, n_src=2, window_size=SR // 2, window="hann")
    out = ola(wav)
    assert out.shape == (1, 2, wav.shape[-1]) and model.training
    assert torch.equal(out, LambdaOverlapAdd(model.eval(), 2, SR // 2, window="hann")(wav))


def test_audio_only_variant():
    model = LookingToListen(n_src=2, use_visual=False, **TINY)
    assert not hasattr(model, "visual_encoder") and not hasattr(model, "visual_stream")
    with_visual = LookingToListen(n_src=2, **TINY)
    assert sum(p.numel() for p in model.parameters()) < sum(
        p.numel() for p in with_visual.parameters()
    )
    assert model(torch.randn(2, SR)).shape == (2, 2, SR)
    with pytest.raises(ValueError, match="audio-only"):
        model(torch.randn(1, SR), _lips(1, 2, 1.0))


def test_per_speaker_fusion_shares_one_network_across_faces():
    torch.manual_seed(0)
    model = LookingToListen(n_src=2, fusion="per_speaker", **TINY).eval()
    joint = LookingToListen(n_src=2, **TINY)
    n_freqs = model.stft.n_freqs
    assert model.mask_layer.out_features == 2 * n_freqs  # one face's mask per pass
    assert joint.mask_layer.out_features == 2 * 2 * n_freqs
    assert model.blstm.input_size == joint.blstm.input_size  # this face + the others' mean, for 2
    wav, lips = torch.randn(1, SR), _lips(1, 2, 1.0)
    out = model.forward_wav(wav, lips)
    assert out.shape == (1, 2, SR)
    no_faces = model.forward_wav(wav)  # the output embeddings keep the outputs apart
    assert not torch.allclose(no_faces[:, 0], no_faces[:, 1], atol=1e-4)
    with torch.no_grad():
        model.output_embedding.zero_()
    # without output embeddings the network is the same for every face: swapping the faces
    # swaps the outputs exactly
    assert torch.allclose(model.forward_wav(wav, lips.flip(1)), model.forward_wav(wav, lips).flip(1), atol=1e-5)
    for n_src in (1, 3):
        many = LookingToListen(n_src=n_src, fusion="per_speaker", **TINY)
        assert many(wav, _lips(1, n_src, 1.0)).shape == (1, n_src, SR)
    assert LookingToListen(n_src=2, use_visual=False, fusion="per_speaker", **TINY).fusion == "joint"
    with pytest.raises(ValueError, match="joint, per_speaker"):
        LookingToListen(n_src=2, fusion="early", **TINY)


def test_audio_only_head_separates_items_without_faces_in_one_pass(tmp_path):
    """Items without faces take the audio-only mask layer; items with faces are separated as before,
    whatever else is in the batch; the head round-trips through a package."""
    torch.manual_seed(0)
    model = LookingToListen(n_src=2, fusion="per_speaker", audio_only_head=True, **TINY).eval()
    wav, lips = torch.randn(2, SR), _lips(2, 2, 1.0)
    lips[1] = 0  # item 1: no face (face dropout, a plain wav)
    both = model.forward_wav(wav, lips)
    assert torch.allclose(both[:1], model.forward_wav(wav[:1], lips[:1]), atol=1e-6)
    assert torch.allclose(both[1:], model.forward_wav(wav[1:]), atol=1e-6)
    model.train()
    model(wav, lips).pow(2).mean().backward()
    assert model.audio_only_mask_layer.weight.grad.abs().sum() > 0 and model.mask_layer.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        head = model.audio_only_mask_layer
        head.weight.zero_(), head.bias.zero_()
    assert torch.equal(model.forward_wav(wav[1:]), torch.zeros(1, 2, SR))  # zero masks from the head
    assert model.forward_wav(wav[:1], lips[:1]).abs().sum() > 0  # the per-face layer still in use
    path = tmp_path / "head.pth"
    torch.save(model.serialize(), path)
    assert load_model(path).audio_only_head and not LookingToListen(n_src=2, **TINY).audio_only_head
    assert not LookingToListen(n_src=2, fusion="joint", audio_only_head=True, **TINY).audio_only_head


@pytest.mark.parametrize("use_visual, fusion", [(True, "per_speaker"), (True, "joint"), (False, "joint")])
def test_audio_bottleneck_narrows_the_blstm_input(tmp_path, use_visual, fusion):
    torch.manual_seed(0)
    plain = LookingToListen(n_src=2, use_visual=use_visual, fusion=fusion, **TINY)
    narrow = LookingToListen(n_src=2, use_visual=use_visual, fusion=fusion, audio_bottleneck=5, **TINY)
    audio_dim = TINY["audio_out_channels"] * plain.stft.n_freqs
    assert plain.blstm.input_size - narrow.blstm.input_size == audio_dim - 5
    assert narrow.audio_projection[0].in_features == audio_dim
    lips = _lips(2, 2, 1.0) if use_visual else None
    assert narrow(torch.randn(2, SR), lips).shape == (2, 2, SR)
    path = tmp_path / "narrow.pth"
    torch.save(narrow.serialize(), path)
    loaded = load_model(path)
    wav = torch.randn(1, SR)
    lips = lips[:1] if use_visual else None
    assert loaded.audio_bottleneck == 5
    assert torch.equal(loaded.forward_wav(wav, lips), narrow.forward_wav(wav, lips))
    with pytest.raises(ValueError, match="audio_bottleneck must be >= 0"):
        LookingToListen(n_src=2, audio_bottleneck=-1, **TINY)


def _plain_types_only(value):
    if isinstance(value, dict):
        return all(_plain_types_only(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_plain_types_only(v) for v in value)
    return value is None or isinstance(value, (str, int, float, bool))


def test_serialize_save_load_from_pretrained(tmp_path):
    _register(LookingToListen)
    torch.manual_seed(0)
    model = LookingToListen(n_src=2, **TINY)
    model(torch.randn(2, SR), _lips(2, 2, 1.0))  # move the BatchNorm statistics
    package = model.serialize()
    assert _plain_types_only(package["model_args"]) and _plain_types_only(package["infos"])
    path = tmp_path / "model.pth"
    torch.save(package, path)
    assert set(torch.load(path, weights_only=True)) == {"model_name", "state_dict",
                                                          "model_args", "infos"}
    loaded = BaseModel.from_pretrained(str(path))
    assert type(loaded) is LookingToListen
    assert loaded.get_model_args() == model.get_model_args()
    wav, lips = torch.randn(1, SR), _lips(1, 2, 1.0, seed=1)
    assert torch.equal(loaded.forward_wav(wav, lips), model.forward_wav(wav, lips))
    again = LookingToListen.from_pretrained(str(path))
    assert torch.equal(again.forward_wav(wav, lips), model.forward_wav(wav, lips))


def test_channels_last_training_layout_same_results_and_loads_back(tmp_path):
    """Training stores the audio stream channels-last: same outputs and gradients, a plain package."""
    torch.manual_seed(0)
    model = LookingToListen(n_src=2, **TINY)
    wav, lips = torch.randn(2, SR), _lips(2, 2, 1.0)
    plain = model(wav, lips)
    plain.square().mean().backward()
    plain_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model.audio_stream.set_channels_last(True)
    weight = model.audio_stream.net[0].weight
    assert model.audio_stream.channels_last and weight.is_contiguous(memory_format=torch.channels_last)
    assert not weight.is_contiguous()
    fast = model(wav, lips)
    fast.square().mean().backward()
    torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-5)
    for grad, plain_grad in zip((p.grad for p in model.parameters()), plain_grads):
        torch.testing.assert_close(grad, plain_grad, rtol=1e-3, atol=1e-6)
    path = tmp_path / "model.pth"
    torch.save(model.serialize(), path)
    loaded = LookingToListen.from_pretrained(str(path))
    assert not loaded.audio_stream.channels_last and loaded.audio_stream.net[0].weight.is_contiguous()
    torch.testing.assert_close(loaded.forward_wav(wav, lips), model.forward_wav(wav, lips), rtol=1e-4, atol=1e-5)
    model.audio_stream.set_channels_last(False)
    assert weight.is_contiguous() and not model.audio_stream.channels_last


def test_visual_encoder_serializes_on_its_own(tmp_path):
    enc = VisualEncoder(kind="embeddings", feat_dim=8, in_dim=32)
    path = tmp_path / "enc.pth"
    torch.save(enc.serialize(), path)
    loaded = load_model(path)
    vectors = torch.randn(1, 2, 10, 32)
    assert isinstance(loaded, VisualEncoder) and torch.equal(loaded(vectors), enc(vectors))
    with pytest.raises(ValueError, match="not a LookingToListen"):
        LookingToListen.from_pretrained(str(path))


def test_mismatching_package_gives_clear_error(tmp_path):
    package = LookingToListen(n_src=2, **TINY).serialize()
    old = dict(package, model_args={**package["model_args"], "n_layers": 3})
    path = tmp_path / "old_model.pth"
    torch.save(old, path)
    with pytest.raises(ValueError, match=r"old_model\.pth.*n_layers"):
        load_model(path)
    wrong_weights = dict(package, model_args={**package["model_args"], "lstm_hidden": 12})
    torch.save(wrong_weights, path)
    with pytest.raises(ValueError, match=r"old_model\.pth.*weights do not match"):
        load_model(path)
    torch.save({"state_dict": {}}, path)
    with pytest.raises(ValueError, match="not a model package"):
        load_model(path)
    torch.save(torch.zeros(3), path)
    with pytest.raises(ValueError, match=r"old_model\.pth: holds a Tensor, not a model package"):
        load_model(path)
    path.write_text("not a model")
    with pytest.raises(ValueError, match=r"old_model\.pth: not a loadable model package"):
        load_model(path)
    # packages from before mask_domain existed mask the compressed spectrogram, as they were trained
    before = dict(package, model_args={k: v for k, v in package["model_args"].items() if k != "mask_domain"})
    torch.save(before, path)
    assert load_model(path).mask_domain == "compressed"
    linear = LookingToListen(n_src=2, mask_domain="linear", **TINY)
    torch.save(linear.serialize(), path)
    assert load_model(path).mask_domain == "linear"
    # ... and from before fusion existed, fuse jointly
    before = dict(package, model_args={k: v for k, v in package["model_args"].items() if k != "fusion"})
    torch.save(before, path)
    assert load_model(path).fusion == "joint"
    per_speaker = LookingToListen(n_src=2, fusion="per_speaker", **TINY)
    torch.save(per_speaker.serialize(), path)
    loaded = load_model(path)
    wav, lips = torch.randn(1, SR), _lips(1, 2, 1.0)
    assert loaded.fusion == "per_speaker"
    assert torch.equal(loaded.forward_wav(wav, lips), per_speaker.forward_wav(wav, lips))
    # ... and from before audio_bottleneck existed, without one
    before = dict(package, model_args={k: v for k, v in package["model_args"].items() if k != "audio_bottleneck"})
    torch.save(before, path)
    assert load_model(path).audio_bottleneck == 0
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        load_model(tmp_path / "missing.pth")
