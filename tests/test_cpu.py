"""Reading the CPU: its name and flags from /proc/cpuinfo, whether bfloat16 is native, and the words beside a speed."""
import pytest

from utils import cpu

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14
flags\t\t: fpu sse2 avx2 avx512f avx512_bf16
bugs\t\t: sysret_ss_attrs

processor\t: 1
model name\t: something else
flags\t\t: fpu
"""


def test_the_first_processors_name_and_flags_are_read():
    name, flags = cpu.parse_cpuinfo(CPUINFO)
    assert name == "AMD EPYC 9R14"
    assert flags == {"fpu", "sse2", "avx2", "avx512f", "avx512_bf16"}
    assert cpu.parse_cpuinfo("") == (None, frozenset())


@pytest.mark.parametrize("flags, native, words", [
    ({"avx2"}, False, "AVX2"), ({"avx2", "avx512f"}, False, "AVX-512"),
    ({"avx2", "avx512f", "avx512_bf16"}, True, "AVX512-BF16"), ({"avx512_bf16", "amx_bf16"}, True, "AMX-BF16"),
    ({"sse2"}, False, ""), ({"avx512_bf16_extra"}, False, ""),
])
def test_bfloat16_is_native_only_with_its_flags(monkeypatch, flags, native, words):
    monkeypatch.setattr(cpu, "read", lambda: ("Some CPU", frozenset(flags)))
    assert cpu.native_bfloat16() is native
    assert cpu.fastest_extension(flags) == words
    assert cpu.describe().endswith(f"cores of Some CPU ({words})" if words else "cores of Some CPU")
