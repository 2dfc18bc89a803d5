"""This CPU: its name, and whether it computes bfloat16 natively, read once from /proc/cpuinfo.

Speed figures mean nothing without the machine they were measured on, and bfloat16 is worth
serving and training in only where the CPU has it in hardware (AVX512-BF16 or AMX, 2-3x
faster); elsewhere it is emulated and slower than float32. Off Linux the name comes from
``platform`` and no flags are known.
"""
import functools
import os
import platform


def parse_cpuinfo(text):
    """``(model name, flags)`` of the first processor in a /proc/cpuinfo text; None, empty where missing."""
    name, flags = None, frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and name is None:
            name = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = frozenset(value.split())
    return name, flags


@functools.cache
def read():
    """``(model name, flags)`` of this machine's CPU."""
    try:
        with open("/proc/cpuinfo") as handle:
            name, flags = parse_cpuinfo(handle.read())
    except OSError:
        name, flags = None, frozenset()
    return name or platform.processor() or platform.machine(), flags


def native_bfloat16():
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX)."""
    return bool({"avx512_bf16", "amx_bf16"} & read()[1])


def fastest_extension(flags):
    """The fastest extension among ``flags`` that a network computes with, in words ("" if none known)."""
    for flag, words in (("amx_bf16", "AMX-BF16"), ("avx512_bf16", "AVX512-BF16"), ("avx512f", "AVX-512"), ("avx2", "AVX2")):
        if flag in flags:
            return words
    return ""


def describe():
    """The machine in words, for beside a speed figure: "2 cores of AMD EPYC (AVX2)"."""
    name, flags = read()
    vector = fastest_extension(flags)
    return f"{os.cpu_count()} cores of {name}" + (f" ({vector})" if vector else "")
