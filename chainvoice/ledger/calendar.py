"""Months and dates of block timestamps, in Beijing time (UTC+8), by integer arithmetic only.

Quotas are monthly and tax periods are months; invoices in the Shenzhen model are dated in China
Standard Time, so a block at 2026-01-31T20:00Z belongs to February 2026.
"""

from __future__ import annotations

import re

BEIJING_OFFSET_MS = 8 * 3600 * 1000
_DAY_MS = 86_400_000
# ASCII digits only, whole string only (``\d`` also matches other scripts' digits, ``$`` a final newline).
_PERIOD = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")
_DATE = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])")


def civil_from_days(days: int) -> tuple[int, int, int]:
    """(year, month, day) of a day count since 1970-01-01 (H. Hinnant's civil_from_days)."""
    z = days + 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return (y + (m <= 2), m, d)


def beijing_date(timestamp_ms: int) -> tuple[int, int, int]:
    return civil_from_days((timestamp_ms + BEIJING_OFFSET_MS) // _DAY_MS)


def month_of(timestamp_ms: int) -> str:
    """'YYYY-MM' of a block timestamp in Beijing time."""
    y, m, _ = beijing_date(timestamp_ms)
    return f"{y:04d}-{m:02d}"


def date_of(timestamp_ms: int) -> str:
    """'YYYY-MM-DD' of a block timestamp in Beijing time."""
    y, m, d = beijing_date(timestamp_ms)
    return f"{y:04d}-{m:02d}-{d:02d}"


def is_period(text: object) -> bool:
    return type(text) is str and _PERIOD.fullmatch(text) is not None


def is_date(text: object) -> bool:
    return type(text) is str and _DATE.fullmatch(text) is not None
