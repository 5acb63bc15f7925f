"""Looking to Listen (Ephrat et al., 2018) as an asteroid ``BaseModel``.

mixture -> STFT -> power-law compression -> audio stream (dilated 2-D convs) [-> linear bottleneck]
faces   -> VisualEncoder -> visual stream (dilated 1-D convs) -> nearest upsampling to STFT frames
concat -> BLSTM -> FC layers -> one unbounded complex ratio mask per speaker
          (all speakers at once, the paper; or once per face with shared weights)
mask x mixture spectrogram (compressed, then decompressed; or linear) -> iSTFT -> one waveform per speaker.
"""
import contextlib
import copy
from typing import Any, Dict, Iterator, List, Optional

import torch
from asteroid.models.base_models import BaseModel
from torch import nn

from .serialization import PlainSerializable
from .spectral import STFT, complex_mul, magnitude_share_filter, power_compress, power_decompress
from .streams import AudioStream, VisualStream
from ..file_routing import VideoSeparationMixin
from .visual_encoder import VisualEncoder

#: Where the masks apply: ``compressed`` (the paper) or ``linear`` (the plain STFT).
MASK_DOMAINS = ("compressed", "linear")

#: How audio and faces are fused into masks: ``joint`` (the paper) or ``per_speaker``.
FUSIONS = ("joint", "per_speaker")

#: Visual frames may differ from ``audio_seconds * fps`` by at most this many frames.
MAX_VISUAL_MISMATCH_FRAMES = 2


def _paper_audio_layers():
    kernels = [[1, 7], [7, 1]] + [[5, 5]] * 12
    dilations = [[1, 1], [1, 1]] + [[d, 1] for d in (1, 2, 4, 8, 16, 32)]
    dilations += [[d, d] for d in (1, 2, 4, 8, 16, 32)]
    return kernels, dilations


_PAPER_KERNELS, _PAPER_DILATIONS = _paper_audio_layers()

#: Size presets. ``paper``: Table 1 of the paper (512-d face embeddings, ~16.7 M parameters
#: for 2 speakers). ``small``: lip-crop CNN and thin streams, trains on 2 CPU cores.
PRESETS: Dict[str, Dict[str, Any]] = {
    "paper": dict(
        audio_channels=96,
        audio_out_channels=8,
        audio_kernels=_PAPER_KERNELS,
        audio_dilations=_PAPER_DILATIONS,
        visual_kind="embeddings",
        visual_in_dim=512,
        visual_feat_dim=256,
        lip_channels=[16, 32, 32],
        visual_channels=256,
        visual_kernels=[7, 5, 5, 5, 5, 5],
        visual_dilations=[1, 1, 2, 4, 8, 16],
        lstm_hidden=400,
        fc_dims=[600, 600, 600],
    ),
    "small": dict(
        audio_channels=16,
        audio_out_channels=4,
        # Undilated 3x3 convs: with 5x5 ones dilated (2, 1) and (4, 2) an AVX2 CPU made 1.44x fewer steps
        # in the same time and they scored no better (the BLSTM after the stream sees the whole clip; README).
        audio_kernels=[[1, 7], [7, 1], [3, 3], [3, 3]],
        audio_dilations=[[1, 1], [1, 1], [1, 1], [1, 1]],
        visual_kind="lips",
        visual_in_dim=512,
        visual_feat_dim=64,
        lip_channels=[16, 32, 32],
        visual_channels=64,
        visual_kernels=[5, 5, 5],
        visual_dilations=[1, 2, 4],
        lstm_hidden=200,
        fc_dims=[300, 300],
    ),
}


def scale_to_mixture(est: torch.Tensor, mixture: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Give each estimate the sign under which it adds to the mixture, then scale all estimates of an
    item by one gain, the least-squares fit of their sum to the mixture.

    A network trained with a scale-invariant loss (SI-SDR, the default) outputs its voices at an
    arbitrary level: ~30x the mixture's for the default model, which written to a 16-bit file
    clips a fifth of the samples. It is also free to output a voice with either sign (SI-SDR is
    the same for ``-s``), and does: an audio-only model trained 14 min outputs one voice inverted,
    so that the sum of its outputs is the *difference* of the voices, and one gain fitted to the
    mixture came out near 0 (tracks at a third of their level on median, some silenced) and of
    either sign window to window. Each estimate is first flipped where it correlates negatively
    with the mixture (a voice is part of the mixture). One gain per item,
    ``<mix, sum_k est_k> / ||sum_k est_k||²``, then brings them to the mixture's level and keeps
    their relative levels, so the voice of a face that is silent stays quiet (a gain per estimate
    would raise whatever leaked into it to the level of the voice it leaked from). SI-SDR, SDR,
    STOI and PESQ do not depend on it.

    Args:
        est: estimates ``(batch, n_src, time)``.
        mixture: ``(batch, time)``.

    Returns:
        torch.Tensor: ``(batch, n_src, time)``; all-zero estimates stay zero.
    """
    est = torch.where((est * mixture[:, None]).sum(-1, keepdim=True) < 0, -est, est)
    total = est.sum(1)
    gain = (total * mixture).sum(-1) / total.pow(2).sum(-1).clamp_min(eps)
    return est * gain[:, None, None]


class LookingToListen(VideoSeparationMixin, PlainSerializable, BaseModel):
    """Audio-visual speech separation with one complex ratio mask per visible speaker.

    Output ``k`` is the voice of the face given as ``visual[:, k]``. Without faces
    (``visual=None``, or a speaker's visual all zeros) the model still separates, but which
    output holds which voice is then arbitrary (train with face dropout for this).
    ``use_visual=False`` builds the audio-only baseline of the same network (train it with PIT).

    Masking: the mask is complex and unbounded (a plain linear output, no sigmoid/tanh), so
    it can scale and rotate phase freely. The network always *sees* the compressed
    spectrogram; ``mask_domain`` says what the mask multiplies:

    - ``"compressed"`` (the paper): the power-law compressed mixture spectrogram; the product
      is decompressed (``|Y|^(1/p)``, phase kept) before the iSTFT. The mask's dynamic range
      is small (a magnitude ratio ``r`` becomes ``r^p``) and the paper's loss (MSE of
      compressed spectrograms) is a loss on the masked spectrogram itself, but a mask error
      is raised to the power ``1/p`` (3.3) in the waveform.
    - ``"linear"``: the plain mixture STFT, so the waveform is linear in the mask, which
      suits a waveform loss (SI-SDR).

    Fusion: with ``fusion="joint"`` (the paper) one BLSTM reads the audio features and every
    face's visual features and its FC layers output all ``n_src`` masks at once, so the network
    learns the mapping "face k -> mask k" once per output slot. With ``"per_speaker"`` the
    same BLSTM + FC layers run once per face (shared weights) on the audio features, that
    face's features and the mean of the other faces' features, and output that face's mask:
    every mixture trains the one extraction network ``n_src`` times. A learned embedding per
    output is added to its face features, so outputs still differ when faces are missing.
    Audio-only models (``use_visual=False``) have no faces to run per and are always joint.
    With ``audio_only_head`` an item without any face (``visual=None``, or all of its faces
    zeros: face dropout, a plain wav) is not run once per (missing) face, where only the learned
    output embeddings would tell the passes apart: one pass of the same BLSTM and FC layers on
    its audio features (visual features zero) feeds a mask layer of its own that outputs all
    ``n_src`` masks at once, as the audio-only baseline does.

    Bottleneck: the audio stream outputs ``audio_out_channels x n_freqs`` features per frame
    (1028 for the ``small`` preset), most of the BLSTM's input and of its cost.
    ``audio_bottleneck=d`` projects them to ``d`` features (linear + ReLU) once per mixture, before
    the fusion (which ``per_speaker`` repeats per face); 0 (the paper) feeds them to the BLSTM as
    they are.

    Args:
        n_src: number of speakers (outputs); one visual stream input per speaker.
        preset: size preset, one of :data:`PRESETS` (``"paper"`` or ``"small"``). Every size
            argument below left to ``None`` comes from it.
        use_visual: ``False`` builds the audio-only baseline (no visual encoder / stream).
        sample_rate: audio sample rate (Hz).
        fps: video frame rate of the visual input.
        lip_size: side of the mouth crops the model takes (``visual_kind="lips"``), as made by
            stage 2 (``visual.lip_size``); inference from video crops with it.
        lip_scale: their scale (stage 2's ``visual.lip_scale``, see
            :func:`~asteroid_avspeech.video.crops.lip_transform`).
        n_filters: FFT size (``n_filters // 2 + 1`` frequency bins).
        kernel_size: STFT window length (samples).
        stride: STFT hop (samples).
        power: power-law compression exponent.
        mask_domain: what the masks multiply, one of :data:`MASK_DOMAINS` (see above).
        fusion: one of :data:`FUSIONS` (see above).
        audio_bottleneck: audio features per frame before the fusion (see above); 0: none.
        audio_only_head: ``per_speaker`` only: items without any face (see above) get all their
            masks from one pass through a mask layer of their own.
        post_filter: in eval mode (inference, validation, evaluation) give each voice the mixture
            times its share of the estimated magnitudes
            (:func:`~asteroid_avspeech.models.spectral.magnitude_share_filter`); training
            (the loss) always sees the masked spectrograms as they are.
        audio_channels: channels of the audio stream's hidden conv layers.
        audio_out_channels: channels of its last (1x1) layer.
        audio_kernels: ``[[k_time, k_freq], ...]`` of the audio stream's hidden layers.
        audio_dilations: ``[[d_time, d_freq], ...]`` same length.
        visual_kind: ``"lips"`` (mouth crops) or ``"embeddings"`` (face embeddings).
        visual_in_dim: face-embedding size (``"embeddings"`` only).
        visual_feat_dim: VisualEncoder output size per frame.
        lip_channels: conv channels of the lip CNN (``"lips"`` only).
        visual_channels: channels of the visual stream.
        visual_kernels: temporal kernel of each visual stream layer.
        visual_dilations: temporal dilation of each visual stream layer.
        lstm_hidden: hidden size of each direction of the BLSTM.
        fc_dims: sizes of the ReLU fully-connected layers after the BLSTM.

    Raises:
        ValueError: unknown preset (the message lists the valid ones) or inconsistent sizes.
    """

    def __init__(
        self,
        n_src: int = 2,
        preset: str = "small",
        use_visual: bool = True,
        sample_rate: float = 16000.0,
        fps: float = 25.0,
        lip_size: int = 16,
        lip_scale: float = 1.3,
        n_filters: int = 512,
        kernel_size: int = 400,
        stride: int = 160,
        power: float = 0.3,
        mask_domain: str = "compressed",
        fusion: str = "joint",
        audio_bottleneck: int = 0,
        audio_only_head: bool = False,
        post_filter: bool = False,
        audio_channels: Optional[int] = None,
        audio_out_channels: Optional[int] = None,
        audio_kernels: Optional[List[List[int]]] = None,
        audio_dilations: Optional[List[List[int]]] = None,
        visual_kind: Optional[str] = None,
        visual_in_dim: Optional[int] = None,
        visual_feat_dim: Optional[int] = None,
        lip_channels: Optional[List[int]] = None,
        visual_channels: Optional[int] = None,
        visual_kernels: Optional[List[int]] = None,
        visual_dilations: Optional[List[int]] = None,
        lstm_hidden: Optional[int] = None,
        fc_dims: Optional[List[int]] = None,
    ):
        super().__init__(sample_rate=sample_rate, in_channels=1)
        if preset not in PRESETS:
            raise ValueError(f"Unknown preset {preset!r}; valid presets: {', '.join(PRESETS)}")
        if n_src < 1:
            raise ValueError(f"n_src must be >= 1, got {n_src}.")
        if mask_domain not in MASK_DOMAINS:
            raise ValueError(f"Unknown mask_domain {mask_domain!r}; valid: {', '.join(MASK_DOMAINS)}")
        if fusion not in FUSIONS:
            raise ValueError(f"Unknown fusion {fusion!r}; valid: {', '.join(FUSIONS)}")
        if audio_bottleneck < 0:
            raise ValueError(f"audio_bottleneck must be >= 0 (0: none), got {audio_bottleneck}.")
        given = dict(
            audio_channels=audio_channels, audio_out_channels=audio_out_channels,
            audio_kernels=audio_kernels, audio_dilations=audio_dilations,
            visual_kind=visual_kind, visual_in_dim=visual_in_dim,
            visual_feat_dim=visual_feat_dim, lip_channels=lip_channels,
            visual_channels=visual_channels, visual_kernels=visual_kernels,
            visual_dilations=visual_dilations, lstm_hidden=lstm_hidden, fc_dims=fc_dims,
        )
        sizes = copy.deepcopy(PRESETS[preset])
        sizes.update({key: value for key, value in given.items() if value is not None})
        self.sizes = _plain(sizes)
        self.n_src = n_src
        self.preset = preset
        self.use_visual = use_visual
        self.fps = float(fps)
        self.lip_size = int(lip_size)
        self.lip_scale = float(lip_scale)
        self.power = float(power)
        self.mask_domain = mask_domain
        self.fusion = fusion if use_visual else "joint"
        self.audio_only_head = bool(audio_only_head) and self.fusion == "per_speaker"
        self.post_filter = bool(post_filter)
        self.stft_args = dict(n_filters=n_filters, kernel_size=kernel_size, stride=stride)

        self.stft = STFT(n_filters, kernel_size, stride, sample_rate=sample_rate)
        n_freqs = self.stft.n_freqs
        self.audio_stream = AudioStream(
            sizes["audio_channels"], sizes["audio_out_channels"],
            sizes["audio_kernels"], sizes["audio_dilations"],
        )
        self.audio_bottleneck = int(audio_bottleneck)
        fusion_dim = sizes["audio_out_channels"] * n_freqs
        if self.audio_bottleneck:
            self.audio_projection = nn.Sequential(nn.Linear(fusion_dim, self.audio_bottleneck), nn.ReLU())
            fusion_dim = self.audio_bottleneck
        if use_visual:
            self.visual_encoder = VisualEncoder(
                kind=sizes["visual_kind"], feat_dim=sizes["visual_feat_dim"],
                in_dim=sizes["visual_in_dim"], lip_channels=sizes["lip_channels"],
                sample_rate=sample_rate,
            )
            self.visual_stream = VisualStream(
                sizes["visual_feat_dim"], sizes["visual_channels"],
                sizes["visual_kernels"], sizes["visual_dilations"],
            )
            visual_dim = self.visual_stream.out_channels
            if self.fusion == "per_speaker":
                fusion_dim += 2 * visual_dim  # this face, the mean of the others
                self.output_embedding = nn.Parameter(0.1 * torch.randn(n_src, visual_dim))
            else:
                fusion_dim += n_src * visual_dim
        masks_per_pass = 1 if self.fusion == "per_speaker" else n_src
        self.blstm = nn.LSTM(fusion_dim, sizes["lstm_hidden"], batch_first=True, bidirectional=True)
        layers: List[nn.Module] = []
        in_dim = 2 * sizes["lstm_hidden"]
        for dim in sizes["fc_dims"]:
            layers += [nn.Linear(in_dim, dim), nn.ReLU()]
            in_dim = dim
        self.fc = nn.Sequential(*layers)
        # Unbounded complex mask: no output non-linearity. (Starting every mask at an equal
        # share of the mixture was tried: with the compressed-spectrogram loss it trained
        # worse, val loss 0.0089 vs 0.0069 after 520 steps, so the default init stays.)
        self.mask_layer = nn.Linear(in_dim, masks_per_pass * 2 * n_freqs)
        if self.audio_only_head:
            self.audio_only_mask_layer = nn.Linear(in_dim, n_src * 2 * n_freqs)

    # ----------------------------------------------------------------------------- shapes
    def _as_batch_time(self, wav: torch.Tensor) -> torch.Tensor:
        """``(time,)``, ``(batch, time)`` or ``(batch, 1, time)`` -> ``(batch, time)``."""
        if wav.ndim == 1:
            return wav.unsqueeze(0)
        if wav.ndim == 2:
            return wav
        if wav.ndim == 3 and wav.shape[1] == 1:
            return wav[:, 0]
        raise ValueError(
            f"Expected a mono waveform (time,), (batch, time) or (batch, 1, time); "
            f"got shape {tuple(wav.shape)}. Mix multichannel audio down to mono first."
        )

    def _visual_frames(self, time: int) -> int:
        return max(1, round(time / self.sample_rate * self.fps))

    def _upsample_indices(self, n_visual: int, n_frames: int, device) -> torch.Tensor:
        """Nearest video frame of each STFT frame centre, ``(n_frames,)`` long."""
        centres = self.stft.frame_centres(n_frames).clamp(min=0) / self.sample_rate
        return (centres * self.fps).floor().long().clamp(max=n_visual - 1).to(device)

    # ------------------------------------------------------------------------ the network
    def visual_features(self, visual: Optional[torch.Tensor], time: int, batch: int,
                        device) -> torch.Tensor:
        """Visual stream output, ``(batch, n_src, video_frames, visual_channels)``.

        ``visual=None`` stands for all-missing faces: zero encoder features.
        """
        if visual is None:
            feats = torch.zeros(batch, self.n_src, self._visual_frames(time),
                                self.visual_encoder.feat_dim, device=device)
        else:
            self.visual_encoder.check_input(visual, self.n_src)
            if visual.shape[0] != batch:
                raise ValueError(
                    f"Visual batch size {visual.shape[0]} differs from audio batch size {batch}."
                )
            expected = time / self.sample_rate * self.fps
            if abs(visual.shape[2] - expected) > MAX_VISUAL_MISMATCH_FRAMES:
                raise ValueError(
                    f"Visual input has {visual.shape[2]} frames but {time} audio samples at "
                    f"{self.sample_rate:g} Hz need {expected:.1f} frames at {self.fps:g} fps."
                )
            feats = self.visual_encoder(visual.to(device))
        return self.visual_stream(feats)

    def estimate_masks(self, comp_spec: torch.Tensor, visual: Optional[torch.Tensor],
                       time: int) -> torch.Tensor:
        """Complex masks from the compressed mixture spectrogram.

        Args:
            comp_spec: ``(batch, 2, frames, freq)`` compressed mixture spectrogram.
            visual: visual input (see :meth:`forward`) or None.
            time: number of audio samples (to align video frames).

        Returns:
            torch.Tensor: ``(batch, n_src, 2, frames, freq)``, real and imaginary parts.
        """
        batch, _, frames, _ = comp_spec.shape
        audio = self.audio_stream(comp_spec)  # (batch, frames, audio_out * freq)
        if self.audio_bottleneck:
            audio = self.audio_projection(audio)  # (batch, frames, audio_bottleneck)
        if not self.use_visual:
            if visual is not None:
                raise ValueError("This model is audio-only (use_visual=False): pass visual=None.")
            return self._masks_joint(audio, self.mask_layer)
        faceless = faceless_items(visual, batch).to(comp_spec.device) if self.audio_only_head else None
        if faceless is not None and faceless.all():
            return self._masks_audio_only(audio)
        vis = self.visual_features(visual, time, batch, comp_spec.device)
        index = self._upsample_indices(vis.shape[2], frames, comp_spec.device)
        vis = vis[:, :, index]  # (batch, n_src, frames, channels)
        if self.fusion == "joint":
            vis = vis.permute(0, 2, 1, 3).reshape(batch, frames, -1)
            return self._masks_joint(torch.cat([audio, vis], dim=-1), self.mask_layer)
        if faceless is None or not faceless.any():
            return self._masks_per_face(audio, vis)
        audio_only = self._masks_audio_only(audio[faceless])
        masks = audio_only.new_empty(batch, *audio_only.shape[1:])  # the dtype of the masks (autocast)
        masks[faceless] = audio_only
        masks[~faceless] = self._masks_per_face(audio[~faceless], vis[~faceless])
        return masks

    def _masks_per_face(self, audio: torch.Tensor, vis: torch.Tensor) -> torch.Tensor:
        """One pass per face: audio ``(batch, frames, dim)``, visual features ``(batch, n_src, frames,
        channels)`` -> ``(batch, n_src, 2, frames, freq)``."""
        batch, n_src, frames, _ = vis.shape
        vis = vis + self.output_embedding[:, None]
        others = (vis.sum(1, keepdim=True) - vis) / max(1, n_src - 1)
        audio = audio.unsqueeze(1).expand(-1, n_src, -1, -1)
        fused = torch.cat([audio, vis, others], dim=-1).flatten(0, 1)  # (batch * n_src, frames, dim)
        masks = self._mask_network(fused, self.mask_layer).reshape(batch, n_src, frames, 2, -1)
        return masks.permute(0, 1, 3, 2, 4)

    def _masks_audio_only(self, audio: torch.Tensor) -> torch.Tensor:
        """``audio_only_head``: audio ``(batch, frames, dim)``, zero visual features -> every mask
        at once, ``(batch, n_src, 2, frames, freq)``."""
        no_faces = audio.new_zeros(*audio.shape[:2], self.blstm.input_size - audio.shape[2])
        return self._masks_joint(torch.cat([audio, no_faces], dim=-1), self.audio_only_mask_layer)

    def _masks_joint(self, fused: torch.Tensor, mask_layer: nn.Linear) -> torch.Tensor:
        """``(batch, frames, dim)`` -> every mask at once, ``(batch, n_src, 2, frames, freq)``."""
        batch, frames, _ = fused.shape
        masks = self._mask_network(fused, mask_layer).reshape(batch, frames, self.n_src, 2, -1)
        return masks.permute(0, 2, 3, 1, 4)

    def _mask_network(self, fused: torch.Tensor, mask_layer: nn.Linear) -> torch.Tensor:
        """BLSTM, FC layers and a linear mask layer: ``(n, frames, dim)`` -> ``(n, frames, out)``."""
        hidden, _ = self.blstm(fused)
        return mask_layer(self.fc(hidden))

    @staticmethod
    def apply_masks(spec: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Complex product ``(batch, n_src, 2, frames, freq)`` x ``(batch, 2, frames, freq)``."""
        return complex_mul(masks, spec.unsqueeze(1))

    def forward(self, wav: torch.Tensor, visual: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Separate the voices of the given faces.

        Args:
            wav: mixture, ``(time,)``, ``(batch, time)`` or ``(batch, 1, time)``. The 2-D form
                is what ``asteroid.dsp.LambdaOverlapAdd`` passes (without visual).
            visual: per-speaker faces: ``(batch, n_src, frames, H, W)`` mouth crops (uint8 or
                float in [0, 1]) or ``(batch, n_src, frames, emb_dim)`` embeddings, at ``fps``,
                covering the same time span as ``wav``. All-zero frames = missing faces.
                ``None``: no faces (audio-only; output order arbitrary).

        Returns:
            torch.Tensor: ``(batch, n_src, time)``, exactly the input length, at the network's
            own level (arbitrary after a scale-invariant loss; :meth:`forward_wav` gives each
            voice its level in the mixture). With ``post_filter`` in eval mode: the filtered
            voices, shares of the mixture.

        Under ``torch.no_grad()`` the model always runs as in eval mode (as in
        :meth:`forward_wav`): ``asteroid-infer --ola-window`` calls ``forward`` on chunks
        without gradients and without ever calling ``.eval()``.
        """
        if self.training and not torch.is_grad_enabled():
            with self._inference_mode():
                return self.forward(wav, visual)
        wav = self._as_batch_time(wav)
        batch, time = wav.shape
        spec = self.stft(wav)
        comp_spec = power_compress(spec, self.power)
        masks = self.estimate_masks(comp_spec, visual, time)
        if self.mask_domain == "linear":
            est = self.apply_masks(spec, masks)
        else:
            est = power_decompress(self.apply_masks(comp_spec, masks), self.power)
        est = self.stft.inverse(est.flatten(0, 1), time)
        if self.post_filter and not self.training:
            est = magnitude_share_filter(self.stft(est).reshape(batch, self.n_src, *spec.shape[1:]), spec)
            est = self.stft.inverse(est.flatten(0, 1), time)
        return est.reshape(batch, self.n_src, time)

    def forward_wav(self, wav: torch.Tensor, visual: Optional[torch.Tensor] = None, **kwargs):
        """Inference: eval mode and no gradients, the training flag restored afterwards; each
        voice at its level in the mixture (:func:`scale_to_mixture`).

        ``asteroid-infer`` / ``asteroid.separate`` call this without ``.eval()``.

        Returns:
            torch.Tensor: ``(batch, n_src, time)``.

        Raises:
            ValueError: NaN or infinite samples in ``wav``.
        """
        if not torch.isfinite(wav).all():
            raise ValueError("The mixture holds NaN or infinite samples: every output sample would be NaN. "
                             "Check the file or the code that made the waveform.")
        with self._inference_mode():
            return scale_to_mixture(self.forward(wav, visual), self._as_batch_time(wav))

    @contextlib.contextmanager
    def _inference_mode(self) -> Iterator[None]:
        """Eval mode without gradients inside; the training flag restored afterwards."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            self.train(was_training)

    def get_model_args(self) -> Dict[str, Any]:
        """Every constructor argument, resolved, as plain Python types."""
        return dict(
            n_src=self.n_src,
            preset=self.preset,
            use_visual=self.use_visual,
            sample_rate=float(self.sample_rate),
            fps=self.fps,
            lip_size=self.lip_size,
            lip_scale=self.lip_scale,
            power=self.power,
            mask_domain=self.mask_domain,
            fusion=self.fusion,
            audio_bottleneck=self.audio_bottleneck,
            audio_only_head=self.audio_only_head,
            post_filter=self.post_filter,
            **self.stft_args,
            **copy.deepcopy(self.sizes),
        )


def faceless_items(visual: Optional[torch.Tensor], batch: int) -> torch.Tensor:
    """``(batch,)`` bool: True for items without any face (``visual=None``: all; else every face
    of the item all zeros). Such items are separated audio-only, and scored with PIT."""
    if visual is None:
        return torch.ones(batch, dtype=torch.bool)
    return ~(visual != 0).flatten(1).any(dim=1)


def _plain(value):
    """Tuples -> lists, recursively (plain, YAML/JSON friendly)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
