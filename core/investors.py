"""Which investor wrote each report: guessed from the file name, taken from a column, corrected by hand.

Report file names look like ``FfBF_<Investor>_...pdf``, so the investor is guessed from the
second underscore-separated part. That guess is wrong for names such as
``PRI_Solvent_Insurance_2024.pdf`` ("Solvent"), so the researcher can take the investor from an
input column instead, and correct any name with a mapping (``Solvent`` -> ``Solvent Insurance``).
The choice is saved as a small JSON file in the data folder (0600) and used everywhere the
investor appears: Explore's charts, filters and downloads, and the command line through
:func:`load_investor_map` and :func:`apply_investors`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from core.errors import CoreError
from core.safefs import atomic_write, describe_os_error

INVESTOR_MAP_FILE = "investors.json"
#: The investor shown for a report whose name has no second underscore-separated part.
UNKNOWN_INVESTOR = "(unknown)"
MAX_NAME_CHARS = 200  # an investor name longer than this is not a name


class InvestorMapError(CoreError):
    """The saved investor mapping cannot be read or written."""


@dataclass(frozen=True)
class InvestorMap:
    """How investors are named: ``column`` (an input column holding the investor, or ``None``
    for the guess from the report's file name), then ``names`` correcting a guessed or column
    value to the investor's name."""

    column: str | None = None
    names: dict[str, str] = field(default_factory=dict)

    def to_record(self) -> dict[str, object]:
        """The JSON written to the data folder."""
        return {"version": 1, "column": self.column, "names": dict(sorted(self.names.items()))}


def investor_from_report(name: str) -> str:
    """``FfBF_NordicPension_Annual_Report_2024.pdf`` -> ``NordicPension``; ``""`` when the name
    has no second underscore-separated part."""
    parts = Path(str(name)).stem.split("_") if name else []
    return parts[1].strip() if len(parts) > 1 else ""


def investor_map_path(data_dir: Path) -> Path:
    """Where the mapping of a data folder is saved."""
    return Path(data_dir) / INVESTOR_MAP_FILE


def load_investor_map(data_dir: Path) -> InvestorMap:
    """The saved mapping, or the default (file-name guess, no corrections) when none is saved.
    A file that is not a mapping raises :class:`InvestorMapError` naming the file and field."""
    path = investor_map_path(data_dir)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return InvestorMap()
    except OSError as exc:
        raise InvestorMapError(describe_os_error(f"Cannot read {path}", exc)) from None
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvestorMapError(f"{path} is not valid JSON ({exc}). Delete it to start again.") from None
    if not isinstance(record, dict):
        raise InvestorMapError(f"{path}: expected a JSON object with 'column' and 'names'.")
    column = record.get("column")
    if column is not None and (not isinstance(column, str) or not column.strip()):
        raise InvestorMapError(f"{path}: field 'column' must be a column name or null.")
    names = record.get("names", {})
    if not isinstance(names, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in names.items()):
        raise InvestorMapError(f"{path}: field 'names' must map text to text.")
    return InvestorMap(column=column, names=clean_names(names))


def save_investor_map(data_dir: Path, mapping: InvestorMap) -> Path:
    """Write ``mapping`` to the data folder (0600, whole or not at all); returns the path."""
    path = investor_map_path(data_dir)
    data = json.dumps(mapping.to_record(), ensure_ascii=False, indent=2).encode("utf-8")
    try:
        atomic_write(path, data)
    except OSError as exc:
        raise InvestorMapError(describe_os_error(f"Cannot save the investor names to {path}", exc)) from None
    return path


def clean_names(names: dict[str, str]) -> dict[str, str]:
    """Corrections worth keeping: trimmed, non-empty, not mapping a name onto itself. Raises
    :class:`InvestorMapError` for a name too long to be one."""
    kept: dict[str, str] = {}
    for key, value in names.items():
        key, value = str(key).strip(), " ".join(str(value).split())
        if len(value) > MAX_NAME_CHARS:
            raise InvestorMapError(f"Investor name for '{key[:60]}' is longer than {MAX_NAME_CHARS} characters.")
        if value and value != key:
            kept[key] = value
    return kept


def base_investors(frame: pd.DataFrame, *, column: str | None, report_column: str = "pdf_file_name") -> pd.Series:
    """Each row's investor before corrections: the ``column`` value when that column is in
    ``frame``, else the guess from the report's file name."""
    if column and column in frame.columns:
        return frame[column].fillna("").astype(str).str.strip()
    if report_column not in frame.columns:
        return pd.Series("", index=frame.index, dtype=str)
    reports = frame[report_column].fillna("").astype(str)
    guesses = {name: investor_from_report(name) for name in reports.unique()}
    return reports.map(guesses)


def apply_investors(frame: pd.DataFrame, mapping: InvestorMap, *, target: str = "investor",
                    report_column: str = "pdf_file_name") -> pd.DataFrame:
    """``frame`` with its ``target`` column set from ``mapping`` (a copy; ``frame`` is not
    changed). Rows with no investor read :data:`UNKNOWN_INVESTOR` only where a correction says
    so: an empty base name can be corrected through the key ``""``."""
    base = base_investors(frame, column=mapping.column, report_column=report_column)
    corrected = base.map(lambda name: mapping.names.get(name, name)) if mapping.names else base
    out = frame.copy(deep=False)
    if target in out.columns:
        out[target] = corrected.to_numpy()
    else:
        out.insert(min(2, len(out.columns)), target, corrected.to_numpy())
    return out


def mapping_table(frame: pd.DataFrame, mapping: InvestorMap, *, report_column: str = "pdf_file_name") -> pd.DataFrame:
    """One row per name found (guessed or in the chosen column) for the editor: ``found``,
    ``reports`` (distinct report files), ``rows`` and ``investor`` (the corrected name)."""
    base = base_investors(frame, column=mapping.column, report_column=report_column)
    reports = frame[report_column] if report_column in frame.columns else pd.Series("", index=frame.index)
    grouped = pd.DataFrame({"found": base, "report": reports}).groupby("found", sort=True)
    table = pd.DataFrame({"reports": grouped["report"].nunique(), "rows": grouped.size()}).reset_index()
    table["investor"] = table["found"].map(lambda name: mapping.names.get(name, name))
    return table[["found", "investor", "reports", "rows"]]


def updated_map(mapping: InvestorMap, edited: pd.DataFrame, *, column: str | None) -> InvestorMap:
    """``mapping`` with the corrections of an edited :func:`mapping_table` (``found`` ->
    ``investor``) laid over it, and the chosen source ``column``. Corrections of names not in
    the table (other jobs' investors) are kept."""
    names = dict(mapping.names)
    for found, investor in zip(edited["found"].astype(str), edited["investor"].fillna("").astype(str)):
        names.pop(found, None)
        names[found] = investor
    return InvestorMap(column=column or None, names=clean_names(names))
