"""Small text helpers shared by the rules' and the operators' messages."""

from __future__ import annotations

from datetime import timedelta


def duration(value: timedelta) -> str:
    """`2d`, `1d 6h`, `36m`, `45s`: short and unambiguous in a one-line alert."""
    seconds = int(value.total_seconds())
    if seconds < 60:
        return f"{seconds}s"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    return " ".join(part for part in parts if part)
