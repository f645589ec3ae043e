"""``emovox export``: one ONNX graph (and optionally int8, TorchScript) for torch-free serving."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer
from rich.console import Console

from emovox.cli.main import app


@app.command()
def export(
    model_dir: Path = typer.Argument(..., help="Model directory (config.json + heads.safetensors)."),
    out_dir: Path = typer.Argument(..., help="Folder to write the exported model to."),
    int8: bool = typer.Option(False, "--int8", help="Also write model.int8.onnx (dynamic int8 MatMul/Gemm)."),
    int8_heads: bool = typer.Option(False, "--int8-heads", help="Quantize the heads too in the int8 variant (and write "
                                    "head.int8.onnx): smaller and a little faster; the gate measures them."),
    torchscript: bool = typer.Option(False, "--torchscript", help="Also write model.ts (TorchScript)."),
    eval_corpus: list[str] = typer.Option([], "--eval", help="Corpus NAME:PATH for the int8 accuracy gate."),
    eval_manifest: list[Path] = typer.Option([], "--eval-manifest", help="JSONL manifest for the int8 accuracy gate."),
    max_ua_drop: float = typer.Option(1.0, help="Largest UA loss of int8 against fp32 that is accepted, in points."),
    threads: int = typer.Option(0, help="onnxruntime threads for the gate (0: one per core)."),
) -> None:
    """Export a model to ONNX (log-mel frames → probabilities, dynamic batch and time)."""
    from emovox.cli.train import load_corpora
    from emovox.errors import EmovoxError
    from emovox.export.onnx import export_model

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("emovox").setLevel(logging.INFO)
    err = Console(stderr=True)
    try:
        evaluation = load_corpora(eval_corpus, eval_manifest) if (eval_corpus or eval_manifest) else None
        if (evaluation is not None or int8_heads) and not int8:
            raise EmovoxError("--eval/--eval-manifest and --int8-heads only make sense with --int8")
        config = export_model(model_dir, out_dir, int8=int8, torchscript=torchscript, evaluation=evaluation,
                              max_ua_drop=max_ua_drop / 100, threads=threads or None, int8_heads=int8_heads)
    except EmovoxError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    files = ", ".join(f"{v['path']} ({v['bytes'] / 1e6:.1f} MB)" for v in config["files"].values())
    err.print(f"saved {out_dir}: {files}; max |probs onnx - torch| "
              f"{config['check']['fp32_vs_torch_max_abs_prob_diff']:.1e}")
    gate = config.get("int8_gate")
    if gate and gate.get("verified"):
        for attempt in gate["attempts"]:
            verdict = "kept (default)" if attempt["kept"] else "refused"
            err.print(f"int8 gate, recipe {attempt['recipe']}, {attempt['n']} clips: UA fp32 {attempt['ua_fp32']:.4f}, "
                      f"int8 {attempt['ua_int8']:.4f}, drop {attempt['ua_drop_points']:.2f} points "
                      f"(limit {attempt['max_drop_points']:.2f}), labels agree {attempt['label_agreement']:.1%}: {verdict}")
            if profiled := attempt.get("profile"):
                err.print(f"  with a profile (profile heads; half the clips profile the other {profiled['n']}): UA fp32 "
                          f"{profiled['ua_fp32']:.4f}, int8 {profiled['ua_int8']:.4f}, drop "
                          f"{profiled['ua_drop_points']:.2f} points, labels agree {profiled['label_agreement']:.1%}")
        if not gate["kept"]:
            err.print("int8 REFUSED by the gate: removed; fp32 stays the default")
    elif gate:
        err.print(f"int8: {gate['note']}")
    typer.echo(json.dumps({"out": str(out_dir), "default_variant": config["default_variant"],
                           "int8_gate": gate}, ensure_ascii=False))
