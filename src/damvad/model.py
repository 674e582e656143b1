"""The DAM scoring head (paper section 3.3-3.4) and its Table 1 ablations, in pure torch (no I/O).

A clip map is ``(t, n) = (7, 1024)`` (I3D Mixed_5c, pooled). Clip ``i`` is scored from its own map
``A = C_i`` and the previous clip's ``B = C_{i-1}`` (zeros before the first clip) -- nothing else, so
the same function :meth:`DAMModel.score_pairs` serves training, whole-video scoring and streaming:

* ``F' = LSTM_enc(A)``                   last hidden state over the t rows (tanh range)
* ``D_t, D_n = dissimilarity(A, B)``     (t,) and (n,), Manhattan ("dist") or cross-covariance ("cov")
* ``D_nt[j, k] = D_t[j] * D_n[k]``       (t, n)
* ``h = LSTM_dam(D_nt)``                 last hidden state
* ``Channel_A = softmax(h)``; ``Clip_A = sigmoid(FC(tanh(h)))``
* ``F* = F' * Channel_A + F'``; ``D = sigmoid(MLP(F*))``; ``wD = D * Clip_A + D`` (in [0, 2])

Where the paper is silent this follows the released Keras code (github
snehashismajhi/DAM-Anomaly-Detection, ``model_DAM.py``):

* the "3-layer MLP" is Dropout(0.2) -> Linear(n_h, 96) + ReLU -> Linear(96, 1) + sigmoid;
* the LSTMs have a single bias vector (Keras layout, gate order i, f, g, o); with ``init="keras"`` they
  start like Keras (Glorot-uniform input kernel, orthogonal recurrent kernel, zero bias with the forget
  gate's set to 1) and the Linear layers Glorot-normal with zero bias;
* the released Keras 2 LSTMs most likely used Keras 2's default ``hard_sigmoid`` gates; the paper says
  "vanilla LSTM", so ``gate_activation="sigmoid"`` is the default and ``"hard_sigmoid"`` is an option;
* the cross-covariance normalisation of the released code is available as ``cov_norm="released"``
  (see :func:`dissimilarity`).

Variants (Table 1): ``mlp`` (l1: the snippet map averaged over t, then the MLP), ``lstm`` (l2: + the
encoder LSTM), ``dist-channel`` / ``cov-channel`` (+ Channel_A, wD = D), ``dist`` / ``cov`` (full DAM).

Speed: ``D_nt`` has rank one, so the DAM LSTM's input projection ``W (D_t[j] D_n) = D_t[j] (W D_n)``
costs one matrix product per clip instead of t; the map itself is only materialised on request.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from damvad.choices import VARIANTS  # Table 1's rows (damvad.choices: the one list)

COV_NORMS: tuple[str, ...] = ("paper", "released")
GATE_ACTIVATIONS: tuple[str, ...] = ("sigmoid", "hard_sigmoid")
INITS: tuple[str, ...] = ("keras", "torch")

# Default of DAMModel.row_block: score_pairs pads its batch to a multiple of this many rows. 1 (off) by
# default: padding made a live single-clip step 2.5-7x slower (the head must stay a small share of the
# I3D time), and without it streaming and whole-video scores agree to fp32 rounding (~1e-5 relative).
ROW_BLOCK = 1


def dissimilarity(
    a: Tensor,
    b: Tensor,
    kind: Literal["dist", "cov"],
    cov_norm: Literal["paper", "released"] = "paper",
) -> tuple[Tensor, Tensor]:
    """Dissimilarity of two clip maps ``a, b`` of shape (..., t, n): returns ``(D_t, D_n)``, (..., t), (..., n).

    ``dist`` (Dist-DAM, Manhattan): ``D_n[k] = sum_j |a[j,k] - b[j,k]|``, ``D_t[j] = sum_k |a[j,k] - b[j,k]|``.

    ``cov`` (Cov-DAM, diagonal of the cross-covariance), ``paper`` normalisation (a covariance is a mean):
    ``D_n[k] = mean_j (a[j,k] - mean_j a[.,k]) (b[j,k] - mean_j b[.,k])`` (across t, per channel) and
    ``D_t[j] = mean_k (a[j,k] - mean_k a[j,.]) (b[j,k] - mean_k b[j,.])`` (across n, per step).

    ``released`` normalisation (the Keras code): the same sums divided by the *other* dimension --
    ``D_n = sum_j(...) / n`` and ``D_t = sum_k(...) / t`` (1024 and 7) -- and negative entries clamped
    to 0 (a side effect of its global max-pool over a diagonal matrix). It equals the paper version
    times ``t/n`` (D_n) and ``n/t`` (D_t), clamped. The paper states neither.
    """
    if a.shape != b.shape:
        raise ValueError(f"dissimilarity: clip maps differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    if a.ndim < 2:
        raise ValueError(f"dissimilarity: expected clip maps of shape (..., t, n), got {tuple(a.shape)}")
    t, n = a.shape[-2], a.shape[-1]
    if kind == "dist":
        diff = (a - b).abs()
        return diff.sum(dim=-1), diff.sum(dim=-2)
    if kind != "cov":
        raise ValueError(f"dissimilarity: kind must be 'dist' or 'cov', got {kind!r}")
    if cov_norm not in COV_NORMS:
        raise ValueError(f"dissimilarity: cov_norm must be one of {COV_NORMS}, got {cov_norm!r}")
    # Per channel, across the t steps.
    sum_n = ((a - a.mean(dim=-2, keepdim=True)) * (b - b.mean(dim=-2, keepdim=True))).sum(dim=-2)
    # Per step, across the n channels.
    sum_t = ((a - a.mean(dim=-1, keepdim=True)) * (b - b.mean(dim=-1, keepdim=True))).sum(dim=-1)
    if cov_norm == "paper":
        return sum_t / n, sum_n / t
    return (sum_t / t).clamp(min=0), (sum_n / n).clamp(min=0)


def _hard_sigmoid(x: Tensor) -> Tensor:
    """Keras 2's ``hard_sigmoid``: clip(0.2 x + 0.5, 0, 1) (not torch's x/6 + 1/2)."""
    return (0.2 * x + 0.5).clamp(0.0, 1.0)


class ManyToOneLSTM(nn.Module):
    """A single-layer LSTM that returns only its last hidden state (Keras ``return_sequences=False``).

    One bias vector (as Keras) instead of torch's two; gate order i, f, g, o (torch and Keras agree).
    Hand-written so the DAM can feed it input projections directly (see :meth:`run`).
    """

    def __init__(self, input_size: int, hidden_size: int, gate_activation: str = "sigmoid") -> None:
        super().__init__()
        if gate_activation not in GATE_ACTIVATIONS:
            raise ValueError(f"gate_activation must be one of {GATE_ACTIVATIONS}, got {gate_activation!r}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.gate_activation = gate_activation
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias = nn.Parameter(torch.empty(4 * hidden_size))
        self.reset_parameters("torch")

    def reset_parameters(self, init: str = "keras") -> None:
        h = self.hidden_size
        with torch.no_grad():
            if init == "keras":
                nn.init.xavier_uniform_(self.weight_ih)
                nn.init.orthogonal_(self.weight_hh)
                self.bias.zero_()
                self.bias[h : 2 * h].fill_(1.0)  # Keras unit_forget_bias=True
            elif init == "torch":
                bound = 1.0 / math.sqrt(h)
                for p in (self.weight_ih, self.weight_hh, self.bias):
                    nn.init.uniform_(p, -bound, bound)
            else:
                raise ValueError(f"init must be one of {INITS}, got {init!r}")

    def project(self, x: Tensor) -> Tensor:
        """Input projections ``x W_ih^T + b`` for every step: (..., t, input) -> (..., t, 4h)."""
        return nn.functional.linear(x, self.weight_ih, self.bias)

    def run(self, projected: Tensor, preactivations: list[Tensor] | None = None) -> Tensor:
        """Recurrence over precomputed input projections (N, t, 4h); returns the last hidden (N, h).

        ``preactivations``, when a list, receives each step's gate pre-activations z (N, 4h), for
        diagnostics (how saturated the gates are)."""
        gate = torch.sigmoid if self.gate_activation == "sigmoid" else _hard_sigmoid
        h = c = None
        for j in range(projected.shape[-2]):
            z = projected[:, j] if h is None else projected[:, j] + h @ self.weight_hh.T
            if preactivations is not None:
                preactivations.append(z.detach())
            i, f, g, o = z.chunk(4, dim=-1)
            c_new = gate(i) * torch.tanh(g)
            c = c_new if c is None else gate(f) * c + c_new  # h0 = c0 = 0: skip the zero products
            h = gate(o) * torch.tanh(c)
        assert h is not None, "an LSTM needs at least one step"
        return h

    def forward(self, x: Tensor) -> Tensor:
        """(N, t, input) -> last hidden state (N, hidden)."""
        return self.run(self.project(x))


@dataclass(frozen=True)
class DAMConfig:
    """Everything needed to rebuild a head; ``dataclasses.asdict`` of it goes into checkpoints."""

    variant: str = "dist"
    feature_dim: int = 1024  # n, channels of a clip map
    hidden: int = 1024  # n_h, both LSTMs
    mlp_hidden: int = 96
    dropout: float = 0.2
    cov_norm: str = "paper"
    # Declared departures (1.0 = the paper): D_nt is multiplied by dnt_scale before the DAM LSTM, and
    # F* = F' * (channel_gain * Channel_A) + F'. See README "Departures from the paper".
    dnt_scale: float = 1.0
    channel_gain: float = 1.0
    temporal: int = 7  # t, rows of a clip map (only used to build the zero state of a stream)
    gate_activation: str = "sigmoid"
    init: str = "keras"

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown DAM variant {self.variant!r}; expected one of {VARIANTS}")
        for name in ("feature_dim", "hidden", "mlp_hidden", "temporal"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"DAMConfig.{name} must be a positive int, got {value!r}")
        if not (isinstance(self.dropout, (int, float)) and 0.0 <= self.dropout < 1.0):
            raise ValueError(f"DAMConfig.dropout must be in [0, 1), got {self.dropout!r}")
        if self.cov_norm not in COV_NORMS:
            raise ValueError(f"DAMConfig.cov_norm must be one of {COV_NORMS}, got {self.cov_norm!r}")
        for name in ("dnt_scale", "channel_gain"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise ValueError(f"DAMConfig.{name} must be a positive number, got {value!r}")
        if self.gate_activation not in GATE_ACTIVATIONS:
            raise ValueError(
                f"DAMConfig.gate_activation must be one of {GATE_ACTIVATIONS}, got {self.gate_activation!r}"
            )
        if self.init not in INITS:
            raise ValueError(f"DAMConfig.init must be one of {INITS}, got {self.init!r}")

    @property
    def uses_encoder(self) -> bool:
        return self.variant != "mlp"

    @property
    def dissimilarity_kind(self) -> str | None:
        """'dist', 'cov', or None for the variants without a DAM."""
        return self.variant.split("-")[0] if self.variant not in ("mlp", "lstm") else None

    @property
    def uses_clip_attention(self) -> bool:
        return self.variant in ("dist", "cov")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DAMConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown DAMConfig field(s) {unknown}; known: {sorted(known)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class StreamState:
    """What a stream carries between clips: the previous clip map (zeros before the first clip)."""

    previous: Tensor  # (B, t, n)
    clips_seen: int = 0


OUTPUT_KEYS = ("score", "weighted", "clip_attention", "channel_attention", "dam_hidden", "logit")


class ClipScorer(nn.Module):
    """What scoring, streaming and export use of a head: :meth:`score_pairs` (defined by a subclass) and,
    built on it, :meth:`forward` (whole videos) and :meth:`init_state` / :meth:`step` (streams)."""

    config: DAMConfig

    def score_pairs(
        self, current: Tensor, previous: Tensor, return_intermediates: bool = False
    ) -> dict[str, Tensor | None]:
        raise NotImplementedError

    def _as_input(self, x: Tensor | np.ndarray, name: str, ndim: int) -> Tensor:
        param = next(self.parameters())
        x = torch.as_tensor(x).to(device=param.device, dtype=param.dtype)
        if x.ndim != ndim or x.shape[-1] != self.config.feature_dim:
            dims = {3: "(N, t, n)", 4: "(B, C, t, n)"}[ndim]
            raise ValueError(f"{name}: expected shape {dims} with n = {self.config.feature_dim}, "
                             f"got {tuple(x.shape)}")
        if x.shape[-2] == 0:
            raise ValueError(f"{name}: clip maps need at least one row (t >= 1), got {tuple(x.shape)}")
        return x

    def forward(
        self, clips: Tensor, previous: Tensor | None = None, return_intermediates: bool = False
    ) -> dict[str, Tensor | None]:
        """Score every clip of B videos, clips (B, C, t, n) -> outputs of shape (B, C, ...).

        Clip i is paired with clip i-1; the first clip with ``previous`` (B, t, n) when continuing a
        video scored in pieces, else zeros. One :meth:`score_pairs` call on the flattened batch.
        """
        clips = self._as_input(clips, "clips", 4)
        b, n_clips, t, n = clips.shape
        first = torch.zeros_like(clips[:, :1]) if previous is None else self._check_previous(previous, clips)
        prev = torch.cat([first, clips[:, :-1]], dim=1)
        flat = self.score_pairs(clips.reshape(b * n_clips, t, n), prev.reshape(b * n_clips, t, n),
                                return_intermediates)
        return {k: (v.reshape(b, n_clips, *v.shape[1:]) if v is not None else None) for k, v in flat.items()}

    def _check_previous(self, previous: Tensor, clips: Tensor) -> Tensor:
        previous = torch.as_tensor(previous).to(device=clips.device, dtype=clips.dtype)
        if previous.shape != (clips.shape[0], *clips.shape[2:]):
            raise ValueError(f"previous: expected shape {(clips.shape[0], *clips.shape[2:])} for clips "
                             f"{tuple(clips.shape)}, got {tuple(previous.shape)}")
        return previous.unsqueeze(1)

    # ---------------------------------------------------------------- streaming
    def init_state(self, batch: int = 1) -> StreamState:
        """State of B fresh streams: the previous clip map is zeros, as before a video's first clip."""
        if batch <= 0:
            raise ValueError(f"batch must be positive, got {batch}")
        param = next(self.parameters())
        zeros = torch.zeros(batch, self.config.temporal, self.config.feature_dim,
                            dtype=param.dtype, device=param.device)
        return StreamState(previous=zeros, clips_seen=0)

    def step(self, clip: Tensor, state: StreamState) -> tuple[dict[str, Tensor | None], StreamState]:
        """Score the next clip (B, t, n) of B streams; outputs have shape (B, ...).

        Gives the same scores as :meth:`forward` on the whole video (same function, same pairs). The
        new state keeps the clip detached: a stream never backpropagates into past inputs.
        """
        clip = self._as_input(clip, "clip", 3)
        if clip.shape != state.previous.shape:
            raise ValueError(f"clip shape {tuple(clip.shape)} does not match the stream state "
                             f"{tuple(state.previous.shape)} (batch, t, n); build it with init_state(batch) "
                             f"and a config whose temporal/feature_dim match the features")
        out = self.score_pairs(clip, state.previous)
        return out, StreamState(previous=clip.detach(), clips_seen=state.clips_seen + 1)


class DAMModel(ClipScorer):
    """The scoring head of one Table 1 variant; see the module docstring for the equations.

    Outputs (dicts of tensors, ``None`` where a variant lacks the piece):
    ``score`` D (sigmoid of the MLP, the score the released code evaluates), ``weighted`` wD (what the
    ranking loss uses; equals D without Clip_A), ``clip_attention`` Clip_A, ``channel_attention``
    Channel_A (hidden,), ``dam_hidden`` h, the DAM LSTM output (the activity regulariser needs it),
    ``logit`` the MLP's output before D's sigmoid (the optional logit wall of the loss needs it).
    """

    def __init__(self, config: DAMConfig) -> None:
        super().__init__()
        self.config = config
        self.row_block = ROW_BLOCK  # see score_pairs; not part of the config (no effect on the maths)
        c = config
        self.encoder = ManyToOneLSTM(c.feature_dim, c.hidden, c.gate_activation) if c.uses_encoder else None
        if c.dissimilarity_kind is not None:
            self.dam_lstm: ManyToOneLSTM | None = ManyToOneLSTM(c.feature_dim, c.hidden, c.gate_activation)
        else:
            self.dam_lstm = None
        self.clip_fc = nn.Linear(c.hidden, 1) if c.uses_clip_attention else None
        mlp_in = c.hidden if c.uses_encoder else c.feature_dim
        self.mlp = nn.Sequential(
            nn.Dropout(c.dropout), nn.Linear(mlp_in, c.mlp_hidden), nn.ReLU(), nn.Linear(c.mlp_hidden, 1)
        )
        self.reset_parameters(c.init)

    def reset_parameters(self, init: str = "keras") -> None:
        for lstm in (self.encoder, self.dam_lstm):
            if lstm is not None:
                lstm.reset_parameters(init)
        for layer in self.linear_layers():
            if init == "keras":
                nn.init.xavier_normal_(layer.weight)  # glorot_normal (Keras 2 truncates it at 2 sd)
                nn.init.zeros_(layer.bias)
            else:
                layer.reset_parameters()

    def linear_layers(self) -> list[nn.Linear]:
        """The MLP's Linear layers followed by Clip_A's FC (if any)."""
        layers = [m for m in self.mlp if isinstance(m, nn.Linear)]
        return layers + ([self.clip_fc] if self.clip_fc is not None else [])

    def mlp_weights(self) -> list[Tensor]:
        """Weights (not biases) of the MLP's Linear layers: what the released code L2-regularises."""
        return [m.weight for m in self.mlp if isinstance(m, nn.Linear)]

    # ------------------------------------------------------------------ scoring
    def score_pairs(
        self, current: Tensor, previous: Tensor, return_intermediates: bool = False
    ) -> dict[str, Tensor | None]:
        """Score N clips from their maps and their predecessors' maps, both (N, t, n).

        The only place the model's equations live; :meth:`forward` and :meth:`step` call it.
        ``return_intermediates`` adds ``encoded`` F' (or the t-mean for ``mlp``), ``modulated`` F*,
        ``dissimilarity_map`` D_nt (materialised only on request) and the gate pre-activations of both
        LSTMs, ``encoder_gates`` / ``dam_gates`` (N, t, 4h), for diagnostics.
        """
        c = self.config
        current = self._as_input(current, "current", 3)
        previous = self._as_input(previous, "previous", 3)
        if current.shape != previous.shape:
            raise ValueError(f"current {tuple(current.shape)} and previous {tuple(previous.shape)} differ")
        # Batch invariance: BLAS picks its kernel (and so its summation order) from the number of rows,
        # and Dist-DAM's large D_nt (~1e2-1e3) amplifies fp32 rounding to ~1e-5 relative in Clip_A.
        # Padding the rows to a multiple of row_block (e.g. 8) with zero clips gives every row the same
        # kernel: a step of <= 8 streams runs the very shapes of a whole video of <= 8 clips, and on the
        # CPU BLAS tested here (rows in full blocks of 4) any batch scores bit-identically to a stream.
        # row_block = 1 (the default) turns it off: a single-stream step is then ~2.5x faster on CPU and
        # matches whole-video scores to ~1e-5 relative.
        rows = current.shape[0]
        pad = (-rows) % self.row_block
        if pad:
            filler = current.new_zeros((pad, *current.shape[1:]))
            current, previous = torch.cat([current, filler]), torch.cat([previous, filler])
        enc_z: list[Tensor] | None = [] if return_intermediates else None
        dam_z: list[Tensor] | None = [] if return_intermediates else None
        if self.encoder is not None:
            encoded = self.encoder.run(self.encoder.project(current), enc_z)
        else:
            encoded = current.mean(dim=-2)
        out: dict[str, Tensor | None] = dict.fromkeys(OUTPUT_KEYS)
        modulated = encoded
        d_t = d_n = None
        if self.dam_lstm is not None:
            kind = c.dissimilarity_kind
            d_t, d_n = dissimilarity(current, previous, kind, c.cov_norm)  # type: ignore[arg-type]
            if c.dnt_scale != 1.0:
                d_t = d_t * c.dnt_scale  # D_nt = D_t (x) D_n: scaling one factor scales the map
            # Rank-one input: W (D_t[j] D_n) + b = D_t[j] (W D_n) + b, one product per clip instead of t.
            proj_n = nn.functional.linear(d_n, self.dam_lstm.weight_ih)  # (N, 4h)
            projected = d_t.unsqueeze(-1) * proj_n.unsqueeze(-2) + self.dam_lstm.bias  # (N, t, 4h)
            h = self.dam_lstm.run(projected, dam_z)
            channel = torch.softmax(h, dim=-1)
            modulated = encoded * (channel * c.channel_gain if c.channel_gain != 1.0 else channel) + encoded
            out["dam_hidden"] = h
            out["channel_attention"] = channel
            if self.clip_fc is not None:
                out["clip_attention"] = torch.sigmoid(self.clip_fc(torch.tanh(h))).squeeze(-1)
        logit = self.mlp(modulated).squeeze(-1)
        score = torch.sigmoid(logit)
        clip_att = out["clip_attention"]
        out["logit"] = logit
        out["score"] = score
        out["weighted"] = score * clip_att + score if clip_att is not None else score
        if return_intermediates:
            out["encoded"] = encoded
            out["modulated"] = modulated
            out["dissimilarity_map"] = (
                d_t.unsqueeze(-1) * d_n.unsqueeze(-2) if d_t is not None and d_n is not None else None
            )
            out["encoder_gates"] = torch.stack(enc_z, dim=1) if enc_z else None
            out["dam_gates"] = torch.stack(dam_z, dim=1) if dam_z else None
        return {k: (v[:rows] if v is not None else None) for k, v in out.items()}


class HeadEnsemble(ClipScorer):
    """K heads of one variant trained apart (each with its own seed), scoring as one: D and wD are the mean of
    the heads' D and wD, Clip_A the mean of theirs. Why: which event kinds a head generalises to depends on its
    seed (benchmarks/lstm-seed-study.md); averaging independently trained heads (a deep ensemble) outvotes one
    that missed a kind. Everything that scores a head (evaluate, calibrate, detect, export) scores an ensemble."""

    def __init__(self, members: list[DAMModel]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 heads, got {len(members)}")
        if any(m.config != members[0].config for m in members[1:]):
            raise ValueError("the heads of an ensemble must share one config")
        self.members = nn.ModuleList(members)
        self.config = members[0].config

    def score_pairs(
        self, current: Tensor, previous: Tensor, return_intermediates: bool = False
    ) -> dict[str, Tensor | None]:
        """The heads' mean ``score``, ``weighted`` and ``clip_attention``; the per-head pieces (logits, hidden
        states, intermediates) have no single value and are None."""
        outs = [m.score_pairs(current, previous) for m in self.members]
        mean = {k: (torch.stack([o[k] for o in outs]).mean(0) if outs[0][k] is not None else None)  # type: ignore[misc]
                for k in ("score", "weighted", "clip_attention")}
        return {**dict.fromkeys(OUTPUT_KEYS), **mean}


def build_model(variant: str = "dist", **kwargs: Any) -> DAMModel:
    """A freshly initialised head of one Table 1 variant; ``kwargs`` are :class:`DAMConfig` fields."""
    return DAMModel(DAMConfig(variant=variant, **kwargs))


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
