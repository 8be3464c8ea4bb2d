"""Which floating-point type the frozen base weights use: bfloat16 where it is measured faster,
float32 elsewhere.

Measured on an AMD EPYC (Zen 4) CPU that reports `avx512_bf16`, torch 2.13, 2 threads: a
1024×640 @ 640×2048 matmul ran at 300 GFLOP/s in float32 and 165 in bfloat16, and LoRA training of
Gemma-3-270M at 320 tokens/s in float32, 205 with bfloat16 weights and 208 under autocast. An
Intel Xeon with `avx512_bf16` and no AMX (oneDNN's avx512_core_bf16 kernels) measured the same:
271 against 157 GFLOP/s, LoRA training 291 against 190 tokens/s (benchmarks/results/
train_throughput.md). An Intel Xeon with AMX tiles (`amx_bf16`) is the other way round: 2,990
against 426 GFLOP/s for the same matmul, and full fine-tuning 1.59× the tokens/s under bf16
autocast (benchmarks/results/train_step_options.md). A 2-core AMD EPYC of family 26 (Zen 5), with
the same `avx512_bf16` flag as the Zen 4 and no AMX, is the other way round too: 618 against 153
GFLOP/s, full fine-tuning of the en-is recipe 2.3× the tokens/s under bf16 autocast (471 against
207) with the same losses, and decoding 3–3.8× (docs/evaluation.md, bfloat16 decoding). No flag
tells these apart, so `bf16_matmul_speedup` measures, and bfloat16 counts as native on a CPU where
it is at least `BF16_MIN_SPEEDUP` times float32; GPUs that support bf16 use it.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
BF16_MIN_SPEEDUP = 1.5  # measured: 0.55× (Zen 4, Xeon without AMX) against 4–7× (Zen 5, AMX)


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU feature flags the kernel reports (empty where there is no /proc/cpuinfo)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name as the kernel reports it (the platform's processor string elsewhere)."""
    import platform

    try:
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.cache
def bf16_matmul_speedup(threads: int) -> float:
    """bfloat16's throughput over float32's for a decoding step's matrix product (32 rows × 640 @
    640 × 4096) on this CPU with `threads` threads: measured once per process and thread count,
    about 0.1 s (3.9× to 4.7× in several processes on the Zen 5 EPYC above)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        seconds = {}
        generator = torch.Generator().manual_seed(0)
        for dtype in (torch.float32, torch.bfloat16):
            a = torch.randn(32, 640, generator=generator).to(dtype)
            b = torch.randn(640, 4096, generator=generator).to(dtype)
            a @ b  # warm-up
            best = float("inf")
            for _ in range(5):
                started = time.perf_counter()
                for _ in range(4):
                    a @ b
                best = min(best, time.perf_counter() - started)
            seconds[dtype] = best
        return seconds[torch.float32] / seconds[torch.bfloat16]
    finally:
        torch.set_num_threads(previous)


def native_bf16(device: torch.device | str) -> bool:
    """Whether `device` computes bfloat16 matrix products faster than float32: CUDA GPUs that
    support bf16; CPUs where `bf16_matmul_speedup` measures at least `BF16_MIN_SPEEDUP`."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bf16_matmul_speedup(torch.get_num_threads()) >= BF16_MIN_SPEEDUP
    return False


def dtype_name(name: str, device: torch.device | str) -> str:
    """`auto` → "bfloat16" where `device` is faster in bf16, else "float32"; other names as given."""
    if name == "auto":
        return "bfloat16" if native_bf16(device) else "float32"
    return name


def resolve_dtype(name: str, device: torch.device | str) -> torch.dtype:
    return DTYPES[dtype_name(name, device)]


def mixed_precision(name: str, device: torch.device | str, *, full: bool) -> str:
    """What a training run's forward passes compute in: `auto` → "bf16" (autocast; weights and
    optimizer state stay float32) when every weight trains (`full`) on a device that computes bf16
    faster, else "fp32"; LoRA runs there already keep their frozen base in bf16. Other names as
    given."""
    if name == "auto":
        return "bf16" if full and native_bf16(device) else "fp32"
    return name
