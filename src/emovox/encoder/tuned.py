"""Fine-tuned top blocks of the Whisper encoder: low-rank adapters, the weights a model ships, and
how they are put back into a frozen encoder.

``emovox train --finetune-blocks K`` tunes the top K blocks (and the final layer norm) of the
encoder. A model folder then carries only what changed, in ``encoder_tuned.safetensors``:

* ``rank > 0`` (low-rank adapters, LoRA): for every linear map of a tuned block, two small
  matrices ``A`` (rank x in) and ``B`` (out x rank); the weight becomes ``W + scale * B @ A``;
* ``rank == 0`` (full tuning): the difference ``W_tuned - W`` of every parameter of the tuned
  blocks, in float16 (about 6 MB per Whisper-base block).

:func:`apply_tuned` merges either into a freshly loaded encoder, so inference, ONNX export and
the torch-free runtime run an ordinary encoder whose weights happen to differ.

Examples:
    >>> import torch
    >>> from emovox.encoder.whisper import WhisperEncoder, WhisperEncoderConfig
    >>> enc = WhisperEncoder(WhisperEncoderConfig(n_mels=8, d_model=16, n_heads=2, n_layers=2))
    >>> top = TunedTop(enc, blocks=1, rank=4)
    >>> _ = torch.nn.init.normal_(top.blocks[0].attn.query.lora_b)   # as if trained
    >>> tensors = top.tuned_tensors()
    >>> sorted(tensors)[:2]
    ['blocks.1.attn.key.lora_a', 'blocks.1.attn.key.lora_b']
    >>> x = torch.randn(1, 5, 16)
    >>> merged = apply_tuned(enc, tensors, scale=top.scale)        # the encoder, now tuned
    >>> torch.allclose(top(x, None)[-1], merged.ln_post(merged.blocks[1](x, None)), atol=1e-5)
    True
"""

from __future__ import annotations

import copy
import hashlib
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from emovox.encoder.whisper import WhisperEncoder
from emovox.errors import ModelError

TUNED_FILE = "encoder_tuned.safetensors"
LINEARS = ("attn.query", "attn.key", "attn.value", "attn.out", "mlp.0", "mlp.2")  # adapted maps of a block


class LoRALinear(nn.Module):
    """A frozen linear map plus a trainable low-rank update ``scale * B @ A`` (B starts at zero,
    so the wrapped map starts exactly as the original).

    Examples:
        >>> lin = nn.Linear(4, 3)
        >>> lora = LoRALinear(lin, rank=2, scale=2.0)
        >>> x = torch.randn(5, 4)
        >>> torch.equal(lora(x), lin(x))
        True
    """

    def __init__(self, linear: nn.Linear, *, rank: int, scale: float):
        super().__init__()
        self.linear = linear
        for p in self.linear.parameters():
            p.requires_grad_(False)
        self.scale = scale
        self.lora_a = nn.Parameter(torch.empty(rank, linear.in_features))
        self.lora_b = nn.Parameter(torch.zeros(linear.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_a, a=5**0.5)

    @property
    def in_features(self) -> int:
        return self.linear.in_features

    @property
    def out_features(self) -> int:
        return self.linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + (x @ self.lora_a.T @ self.lora_b.T) * self.scale


def _get(module: nn.Module, dotted: str) -> nn.Module:
    for part in dotted.split("."):
        module = module[int(part)] if part.isdigit() else getattr(module, part)  # type: ignore[index]
    return module


def _set(module: nn.Module, dotted: str, value: nn.Module) -> None:
    parent, _, name = dotted.rpartition(".")
    owner = _get(module, parent) if parent else module
    if name.isdigit():
        owner[int(name)] = value  # type: ignore[index]
    else:
        setattr(owner, name, value)


class TunedTop(nn.Module):
    """The top ``blocks`` blocks of ``encoder`` and its final layer norm, copied and made trainable:
    fully (``rank=0``) or through low-rank adapters on every linear map (``rank>0``).

    ``forward(x, mask)`` takes hidden state ``n_layers - blocks`` (the input of the lowest tuned
    block, ``(batch, frames, d)``) and returns the hidden states above it, the last with the
    final layer norm applied, as :class:`WhisperEncoder` does.
    """

    def __init__(self, encoder: WhisperEncoder, *, blocks: int, rank: int = 8, alpha: float | None = None):
        super().__init__()
        n_layers = encoder.config.n_layers
        if not 1 <= blocks <= n_layers:
            raise ValueError(f"can tune 1 to {n_layers} blocks, not {blocks}")
        self.first = n_layers - blocks  # index of the lowest tuned block
        self.rank = rank
        self.scale = (alpha if alpha is not None else 2.0 * rank) / rank if rank else 1.0
        self.blocks = copy.deepcopy(encoder.blocks[self.first :])
        self.ln_post = copy.deepcopy(encoder.ln_post)
        self._base = {name: t.detach().clone() for name, t in self._named_weights().items()}
        if rank:
            for p in self.parameters():
                p.requires_grad_(False)
            for block in self.blocks:
                for name in LINEARS:
                    _set(block, name, LoRALinear(_get(block, name), rank=rank, scale=self.scale))

    def _named_weights(self) -> dict[str, torch.Tensor]:
        """Tuned parameters under the encoder's own names (``blocks.{i}.…``, ``ln_post.…``)."""
        out = {}
        for k, block in enumerate(self.blocks):
            for name, t in block.state_dict().items():
                if "lora_" not in name:
                    out[f"blocks.{self.first + k}.{name.replace('.linear.', '.')}"] = t
        out.update({f"ln_post.{name}": t for name, t in self.ln_post.state_dict().items()})
        return out

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> list[torch.Tensor]:
        states = []
        for block in self.blocks:
            x = block(x, mask)
            states.append(x)
        states[-1] = self.ln_post(x)
        return states

    def tuned_tensors(self) -> dict[str, torch.Tensor]:
        """What a model folder stores: the adapters (``rank>0``) or float16 weight differences."""
        if self.rank:
            return {f"blocks.{self.first + k}.{name}.{ab}": getattr(_get(block, name), ab).detach().clone().contiguous()
                    for k, block in enumerate(self.blocks) for name in LINEARS for ab in ("lora_a", "lora_b")}
        now = self._named_weights()
        return {f"{name}.delta": (now[name] - self._base[name]).to(torch.float16).contiguous() for name in now}


def apply_tuned(encoder: WhisperEncoder, tensors: dict[str, torch.Tensor], *, scale: float = 1.0) -> WhisperEncoder:
    """Merge tuned tensors (:meth:`TunedTop.tuned_tensors`) into ``encoder``'s weights, in place."""
    params = dict(encoder.named_parameters())
    with torch.no_grad():
        for name, t in tensors.items():
            if name.endswith(".delta"):
                target = name[: -len(".delta")]
                if target not in params:
                    raise ModelError(f"tuned weight {target} is not a parameter of this encoder")
                params[target] += t.to(params[target].dtype)
            elif name.endswith(".lora_a"):
                stem = name[: -len(".lora_a")]
                b = tensors.get(f"{stem}.lora_b")
                weight = params.get(f"{stem}.weight")
                if b is None or weight is None:
                    raise ModelError(f"incomplete adapter {stem} in the tuned weights")
                weight += scale * (b.to(weight.dtype) @ t.to(weight.dtype))
            elif not name.endswith(".lora_b"):
                raise ModelError(f"unexpected tuned tensor {name}")
    return encoder


def tuned_blocks(tensors: dict[str, torch.Tensor]) -> list[int]:
    """The encoder blocks the tensors change."""
    return sorted({int(name.split(".")[1]) for name in tensors if name.startswith("blocks.")})


def save_tuned(directory: str | os.PathLike, tensors: dict[str, torch.Tensor], *, scale: float, rank: int) -> dict:
    """Write ``encoder_tuned.safetensors`` into ``directory``; returns its entry for config.json."""
    path = Path(directory) / TUNED_FILE
    tmp = path.with_suffix(".tmp")
    save_file(tensors, os.fspath(tmp), metadata={"scale": repr(scale), "rank": str(rank)})
    os.replace(tmp, path)
    return {"file": TUNED_FILE, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "scale": scale,
            "rank": rank, "kind": "lora" if rank else "full", "blocks": tuned_blocks(tensors),
            "bytes": path.stat().st_size}


def load_tuned(directory: str | os.PathLike, entry: dict) -> dict[str, torch.Tensor]:
    """Read a model folder's tuned tensors, refusing a file whose sha256 is not ``entry``'s."""
    path = Path(directory) / entry.get("file", TUNED_FILE)
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"the model's tuned encoder weights are missing: {path}") from exc
    digest = hashlib.sha256(blob).hexdigest()
    if digest != entry.get("sha256"):
        raise ModelError(f"{path}: sha256 {digest[:12]} is not the one in config.json ({str(entry.get('sha256'))[:12]})")
    return load_file(os.fspath(path))
