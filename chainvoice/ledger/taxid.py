"""Unified social credit codes (GB 32100-2015): the taxpayer ids of sellers and buyers."""

from __future__ import annotations

from functools import lru_cache

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # 31 characters: no I, O, S, V, Z
LENGTH = 18
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
# Weight of position i (1-based) is 3^(i-1) mod 31 (GB 32100-2015 §5).
_WEIGHTS = tuple(pow(3, i, 31) for i in range(LENGTH - 1))


def check_character(first17: str) -> str:
    """The 18th character for the first 17: (31 - Σ value·weight mod 31) mod 31."""
    total = sum(_VALUE[c] * w for c, w in zip(first17, _WEIGHTS))
    return ALPHABET[(31 - total % 31) % 31]


def is_valid(code: object) -> bool:
    """True for an 18-character code over the GB 32100 alphabet with a correct check character."""
    if type(code) is not str or len(code) != LENGTH:
        return False
    if any(c not in _VALUE for c in code):
        return False
    return check_character(code[:17]) == code[17]


def problem(code: object) -> str | None:
    """Why ``code`` is not a valid taxpayer id, or None."""
    if type(code) is not str:
        return f"taxpayer id must be {LENGTH} characters"
    return _problem(code)


# The same few thousand sellers and buyers issue all day; checking each id once is enough.
@lru_cache(maxsize=65536)
def _problem(code: str) -> str | None:
    if len(code) != LENGTH:
        return f"taxpayer id must be {LENGTH} characters"
    bad = [c for c in code if c not in _VALUE]
    if bad:
        return f"taxpayer id has characters outside the GB 32100 alphabet: {''.join(sorted(set(bad)))}"
    want = check_character(code[:17])
    if want != code[17]:
        return f"taxpayer id check character is {code[17]}, expected {want}"
    return None
