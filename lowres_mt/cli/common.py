"""Consoles and small rendering helpers shared by the CLI modules."""

from __future__ import annotations

from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


BACKEND_HELP = ("decoder: auto (CTranslate2 on CUDA, torch on CPU, where CTranslate2 measured slower), "
                "torch, or ctranslate2 (falls back to torch with a notice where it would decode differently)")
QUANTIZATION_HELP = ("compute type: auto (bfloat16 torch under --backend auto where this device measures it "
                     "faster, else float32), float32 (the reference answers), bfloat16 (torch), or "
                     "CTranslate2's int8_float32 or int8")
