"""Matching human labels to a job's answers by normalised paragraph text.

A *unit* is one distinct normalised paragraph (or one paragraph in one report, when matching
on text and report). On the human side, several rows of a unit (annotators, or the same
paragraph labelled twice) resolve by strict majority per answer column; a tie is excluded and
listed. On the job side, rows of a unit are one unit too: only ``succeeded`` rows count, and
when those disagree the unit is excluded as a conflict and listed. Every human-labelled unit
ends in exactly one of: compared, tie, conflict, not succeeded (by status), unmatched, so the
counts add up.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from core.evaluate.defaults import MatchOn
from core.evaluate.labels import ANNOTATOR, HumanLabels
from core.explore import investor_from_report
from core.results import ROW_STATUSES


KEY = "key"
INVESTOR = "investor"

# Typographic quotes and dashes a retyped or re-extracted paragraph may carry, mapped to the
# ASCII forms. Applied after NFKC, which already folds full-width forms (U+FF02, U+FF0D) and
# small-form variants but leaves these alone.
_QUOTES_AND_DASHES = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2039": "'", "\u203a": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-",
    "\u2212": "-",
})
_WHITESPACE = re.compile(r"\s+")
# The report and the text of a text+report key are joined by a line break: normalised text
# never holds one, so the join is unambiguous.
_KEY_JOIN = "\n"


def normalise_text(text: object) -> str:
    """The matching form of a paragraph: Unicode NFKC, typographic quotes and dashes to their
    ASCII forms, every run of whitespace (line breaks included) to one space, trimmed. Case is
    kept: "EUR" and "eur" are different words to a coder."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return ""
    normal = unicodedata.normalize("NFKC", str(text)).translate(_QUOTES_AND_DASHES)
    return _WHITESPACE.sub(" ", normal).strip()


def unit_keys(texts: pd.Series, reports: pd.Series | None, *, match_on: MatchOn) -> pd.Series:
    """The unit key of each row: its normalised text, or normalised report + text."""
    keys = texts.map(normalise_text)
    if match_on == "text+report":
        if reports is None:
            raise ValueError("matching on text+report needs a pdf_file_name column")
        keys = reports.map(normalise_text) + _KEY_JOIN + keys
    return keys.astype("object")


# ----------------------------------------------------------------------------------------------
# Job side
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobUnits:
    """A job's rows grouped into units.

    ``frame`` is indexed by unit key, one row per unit: ``paragraph_text`` and
    ``pdf_file_name`` of its first row, ``custom_ids`` (all rows, joined by spaces), ``n_rows``,
    ``status`` (``succeeded`` when any row succeeded, else its rows' most common status), the
    answer columns and ``explanation`` of its first succeeded row (missing otherwise), and
    ``conflict`` (its succeeded rows disagree on an answer column).
    """

    frame: pd.DataFrame
    columns: tuple[str, ...]


def job_units(results: pd.DataFrame, *, columns: Sequence[str], match_on: MatchOn) -> JobUnits:
    """Group a job's result rows (``JobService.collect(...).frame``) into units."""
    frame = results.reset_index(drop=True)
    reports = frame["pdf_file_name"] if "pdf_file_name" in frame else pd.Series("", index=frame.index)
    keyed = pd.DataFrame({
        KEY: unit_keys(frame["paragraph_text"], reports, match_on=match_on),
        "paragraph_text": frame["paragraph_text"].astype("object"),
        "pdf_file_name": reports.fillna("").astype("object"),
        "custom_id": frame["custom_id"].astype("object"),
        "status": frame["status"].astype("object"),
        "explanation": (frame["explanation"] if "explanation" in frame else pd.Series("", index=frame.index))
        .fillna("").astype("object"),
    })
    for column in columns:
        keyed[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
    keyed = keyed[keyed[KEY] != ""]

    firsts = keyed.drop_duplicates(KEY).set_index(KEY)
    units = firsts[["paragraph_text", "pdf_file_name"]].copy()
    units["custom_ids"] = firsts["custom_id"]
    units["n_rows"] = keyed.groupby(KEY, sort=False).size()
    # joining ids group by group is slow in pandas: only paragraphs sent more than once need it
    repeated = keyed[keyed[KEY].duplicated(keep=False)]
    if not repeated.empty:
        joined = repeated.groupby(KEY, sort=False)["custom_id"].agg(" ".join)
        units.loc[joined.index, "custom_ids"] = joined

    succeeded = keyed[keyed["status"] == "succeeded"]
    first_success = succeeded.drop_duplicates(KEY).set_index(KEY)
    units["status"] = "succeeded"
    failed_keys = units.index.difference(first_success.index)
    if len(failed_keys):
        order = {s: n for n, s in enumerate(ROW_STATUSES)}
        failed = keyed[keyed[KEY].isin(failed_keys)]
        # the most common status of the unit's rows; equal counts go to the earlier status
        counts = failed.groupby([KEY, "status"]).size().reset_index(name="n")
        counts["order"] = counts["status"].map(order).fillna(len(order))
        counts = counts.sort_values(["n", "order"], ascending=[False, True]).drop_duplicates(KEY)
        units.loc[counts[KEY].to_numpy(), "status"] = counts["status"].to_numpy()
    for column in (*columns, "explanation"):
        units[column] = first_success[column].reindex(units.index)
    for column in columns:
        units[column] = units[column].astype("Int64")
    if len(columns) and not succeeded.empty:
        distinct = succeeded.groupby(KEY)[list(columns)].nunique(dropna=False)
        conflict = (distinct > 1).any(axis=1)
    else:
        conflict = pd.Series(False, index=units.index)
    units["conflict"] = conflict.reindex(units.index, fill_value=False).astype(bool)
    return JobUnits(frame=units, columns=tuple(columns))


# ----------------------------------------------------------------------------------------------
# Human side
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HumanUnits:
    """Human labels grouped into units.

    ``frame`` is indexed by unit key: ``paragraph_text`` and ``pdf_file_name`` of its first
    row, ``rows`` (file row numbers, joined by commas), ``annotators`` (distinct, joined), and
    for each answer column ``n0_<col>``, ``n1_<col>`` (votes) and ``<col>`` (the strict
    majority; missing on a tie or without any vote). ``votes`` is the long table (key,
    annotator, column, label) of each annotator's own label per unit, for human-human
    agreement (an annotator who labelled a unit twice counts by their own strict majority).
    """

    frame: pd.DataFrame
    votes: pd.DataFrame
    columns: tuple[str, ...]

    def ties(self, column: str) -> pd.Index:
        """Keys whose votes in ``column`` are split evenly."""
        n0, n1 = self.frame[f"n0_{column}"], self.frame[f"n1_{column}"]
        return self.frame.index[(n0 == n1) & (n0 > 0)]

    def labelled(self) -> pd.Index:
        """Keys with at least one valid label in any answer column."""
        total = sum(self.frame[f"n0_{c}"] + self.frame[f"n1_{c}"] for c in self.columns)
        return self.frame.index[total > 0]


def human_units(labels: HumanLabels, *, match_on: MatchOn) -> HumanUnits:
    """Group a labels file into units and resolve duplicates by strict majority."""
    columns = tuple(labels.columns)
    frame = labels.frame.copy()
    frame[KEY] = unit_keys(frame["paragraph_text"], frame["pdf_file_name"], match_on=match_on)
    frame = frame[frame[KEY] != ""]
    grouped = frame.groupby(KEY, sort=False)
    units = frame.drop_duplicates(KEY).set_index(KEY)[["paragraph_text", "pdf_file_name"]]
    units["rows"] = grouped["row"].agg(lambda rows: ", ".join(str(r) for r in rows))
    units["annotators"] = grouped[ANNOTATOR].agg(lambda names: ", ".join(dict.fromkeys(n for n in names if n)))
    long_parts = []
    for column in columns:
        values = frame[column]
        n1 = (values == 1).fillna(False).groupby(frame[KEY], sort=False).sum()
        n0 = (values == 0).fillna(False).groupby(frame[KEY], sort=False).sum()
        units[f"n0_{column}"] = n0.reindex(units.index).astype("int64")
        units[f"n1_{column}"] = n1.reindex(units.index).astype("int64")
        units[column] = _majority(units[f"n0_{column}"], units[f"n1_{column}"])
        if labels.annotator_column is not None:
            part = frame.loc[values.notna() & (frame[ANNOTATOR] != ""), [KEY, ANNOTATOR, column]]
            per = part.groupby([KEY, ANNOTATOR], sort=False)[column]
            ones, total = per.sum(), per.count()
            own = _majority(total - ones, ones)
            long_parts.append(pd.DataFrame({
                KEY: own.index.get_level_values(0), ANNOTATOR: own.index.get_level_values(1),
                "column": column, "label": own.to_numpy(),
            }))
    votes = (pd.concat(long_parts, ignore_index=True) if long_parts
             else pd.DataFrame({KEY: [], ANNOTATOR: [], "column": [], "label": pd.array([], dtype="Int64")}))
    votes = votes[votes["label"].notna()].reset_index(drop=True)
    return HumanUnits(frame=units, votes=votes, columns=columns)


def _majority(n0: pd.Series, n1: pd.Series) -> pd.Series:
    """1 where more votes say 1, 0 where more say 0, missing on a tie or no vote."""
    out = pd.Series(pd.NA, index=n0.index, dtype="Int64")
    out[n1 > n0] = 1
    out[n0 > n1] = 0
    return out


# ----------------------------------------------------------------------------------------------
# Matching
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    """The two sides joined.

    ``pairs`` has one row per compared unit (index: key) with ``paragraph_text``,
    ``pdf_file_name``, ``investor``, ``custom_ids``, ``explanation``, ``human_rows``,
    ``annotators`` and, per answer column, ``human_<col>`` (missing when tied or unlabelled in
    that column), ``model_<col>``, ``n0_<col>`` and ``n1_<col>``. The other frames list what
    was left out and why; the counts are distinct units.
    """

    match_on: MatchOn
    columns: tuple[str, ...]
    pairs: pd.DataFrame
    ties: pd.DataFrame  # key, column, paragraph_text, pdf_file_name, rows, n0, n1
    conflicts: pd.DataFrame  # key, paragraph_text, pdf_file_name, custom_ids, answers
    not_succeeded: pd.DataFrame  # key, paragraph_text, pdf_file_name, status, custom_ids, rows
    unmatched_labels: pd.DataFrame  # key, paragraph_text, pdf_file_name, rows, annotators
    unmatched_rows: pd.DataFrame  # key, paragraph_text, pdf_file_name, status, custom_ids
    labelled_units: int
    job_units: int
    tied_units: int  # labelled units left with no comparable column because of ties
    column_ties: dict[str, int] = field(default_factory=dict)
    votes: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def matched(self) -> int:
        """Units compared in at least one answer column."""
        return len(self.pairs)

    @property
    def not_succeeded_by_status(self) -> dict[str, int]:
        """Labelled units whose job rows all ended without an answer, per status."""
        counts = self.not_succeeded["status"].value_counts()
        return {str(s): int(n) for s, n in counts.items()}


def match(job: JobUnits, human: HumanUnits, *, match_on: MatchOn) -> Match:
    """Join human units to job units (see the module docstring for the rules)."""
    columns = tuple(c for c in human.columns if c in job.columns)
    jobs, people = job.frame, human.frame
    labelled = human.labelled()
    people = people.loc[labelled]
    common = people.index.intersection(jobs.index, sort=False)

    unmatched_labels = people.loc[people.index.difference(jobs.index, sort=False)]
    # a paragraph whose human rows hold no valid label (blank, or reported as a label problem)
    # counts as not labelled
    unmatched_rows = jobs.loc[jobs.index.difference(labelled, sort=False)]

    joined = people.loc[common].join(jobs.loc[common], suffixes=("_human", "_job"))
    failed = joined["status"] != "succeeded"
    conflict = ~failed & joined["conflict"].astype(bool)
    usable = joined.loc[~failed & ~conflict]

    column_ties: dict[str, int] = {}
    tie_parts = []
    comparable = pd.Series(False, index=usable.index)
    for column in columns:
        n0, n1 = usable[f"n0_{column}"], usable[f"n1_{column}"]
        tied = (n0 == n1) & (n0 > 0)
        column_ties[column] = int(tied.sum())
        comparable |= usable[f"{column}_human"].notna()
        if tied.any():
            part = usable.loc[tied]
            tie_parts.append(pd.DataFrame({
                KEY: part.index, "column": column, "paragraph_text": part["paragraph_text_human"].to_numpy(),
                "pdf_file_name": part["pdf_file_name_human"].to_numpy(), "rows": part["rows"].to_numpy(),
                "n0": n0[tied].to_numpy(), "n1": n1[tied].to_numpy(),
            }))
    compared = usable.loc[comparable]
    tied_units = int((~comparable).sum())

    pairs = pd.DataFrame(index=compared.index)
    pairs["paragraph_text"] = compared["paragraph_text_job"]
    pairs["pdf_file_name"] = compared["pdf_file_name_job"]
    pairs[INVESTOR] = pairs["pdf_file_name"].map(investor_from_report)
    pairs["custom_ids"] = compared["custom_ids"]
    pairs["explanation"] = compared["explanation"]
    pairs["human_rows"] = compared["rows"]
    pairs["annotators"] = compared["annotators"]
    for column in columns:
        pairs[f"human_{column}"] = compared[f"{column}_human"].astype("Int64")
        pairs[f"model_{column}"] = compared[f"{column}_job"].astype("Int64")
        pairs[f"n0_{column}"] = compared[f"n0_{column}"]
        pairs[f"n1_{column}"] = compared[f"n1_{column}"]
    pairs.index.name = KEY

    conflicts_frame = joined.loc[conflict]
    return Match(
        match_on=match_on,
        columns=columns,
        pairs=pairs,
        ties=(pd.concat(tie_parts, ignore_index=True) if tie_parts else _empty(
            [KEY, "column", "paragraph_text", "pdf_file_name", "rows", "n0", "n1"])),
        conflicts=pd.DataFrame({
            KEY: conflicts_frame.index,
            "paragraph_text": conflicts_frame["paragraph_text_job"].to_numpy(),
            "pdf_file_name": conflicts_frame["pdf_file_name_job"].to_numpy(),
            "custom_ids": conflicts_frame["custom_ids"].to_numpy(),
            "rows": conflicts_frame["rows"].to_numpy(),
        }),
        not_succeeded=pd.DataFrame({
            KEY: joined.index[failed],
            "paragraph_text": joined.loc[failed, "paragraph_text_job"].to_numpy(),
            "pdf_file_name": joined.loc[failed, "pdf_file_name_job"].to_numpy(),
            "status": joined.loc[failed, "status"].to_numpy(),
            "custom_ids": joined.loc[failed, "custom_ids"].to_numpy(),
            "rows": joined.loc[failed, "rows"].to_numpy(),
        }),
        unmatched_labels=pd.DataFrame({
            KEY: unmatched_labels.index,
            "paragraph_text": unmatched_labels["paragraph_text"].to_numpy(),
            "pdf_file_name": unmatched_labels["pdf_file_name"].to_numpy(),
            "rows": unmatched_labels["rows"].to_numpy(),
            "annotators": unmatched_labels["annotators"].to_numpy(),
        }),
        unmatched_rows=pd.DataFrame({
            KEY: unmatched_rows.index,
            "paragraph_text": unmatched_rows["paragraph_text"].to_numpy(),
            "pdf_file_name": unmatched_rows["pdf_file_name"].to_numpy(),
            "status": unmatched_rows["status"].to_numpy(),
            "custom_ids": unmatched_rows["custom_ids"].to_numpy(),
        }),
        labelled_units=len(people),
        job_units=len(jobs),
        tied_units=tied_units,
        column_ties=column_ties,
        votes=human.votes,
    )


def conflict_answers(results: pd.DataFrame, conflicts: pd.DataFrame, *, columns: Sequence[str],
                     match_on: MatchOn) -> pd.DataFrame:
    """The succeeded rows behind each conflict (custom_id and its answers), for listing."""
    if conflicts.empty:
        return _empty([KEY, "custom_id", *columns, "explanation"])
    reports = results["pdf_file_name"] if "pdf_file_name" in results else None
    keys = unit_keys(results["paragraph_text"], reports, match_on=match_on)
    chosen = results[keys.isin(conflicts[KEY]) & (results["status"] == "succeeded")]
    out = pd.DataFrame({KEY: keys[chosen.index], "custom_id": chosen["custom_id"]})
    for column in (*columns, "explanation"):
        if column in chosen:
            out[column] = chosen[column]
    return out.reset_index(drop=True)


def _empty(columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
