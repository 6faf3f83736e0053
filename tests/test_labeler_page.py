"""The Submit page with the embedding labeler (AppTest): the default model, an uploaded labels
file as examples, and their cross-validated agreement shown before anything is submitted."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.local.labeler import default_labeler_model, labeler_model
from core.local.labeler.examples import examples_from_labels

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TASK1 = "investment_activity_classification"
LABELS = b"""paragraph_text,score
We invested EUR 5 million in a wetland restoration fund.,1
Wij hebben 2 miljoen euro in natuurherstel geinvesteerd.,1
Nature matters to everyone.,0
Wir unterstuetzen die Empfehlungen der TNFD.,0
"""
INPUT = b"""pdf_file_name,paragraph_text
FfBF_Tester_Annual_Report_2024.pdf,In 2024 we put EUR 3 million into a fund that restores peat bogs.
FfBF_Tester_Annual_Report_2024.pdf,Biodiversity is important for all of us.
"""


def test_submit_page_shows_the_expected_agreement_of_uploaded_examples(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BDASSET_LOCAL_LABELER")  # the product's default, not the suite's pinned baseline
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("pages/submit.py").run()  # "/" is the home page
    assert at.text_input(key="submit_model_local").value == default_labeler_model()
    at.file_uploader(key="submit_upload").set_value(("paragraphs.csv", INPUT, "text/csv")).run()
    at.file_uploader(key=f"submit_examples_{TASK1}").set_value(("labels.csv", LABELS, "text/csv")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    (tmp_path / "labels.csv").write_bytes(LABELS)
    expected = labeler_model(examples_from_labels(tmp_path / "labels.csv", task=TASK1).sha256)
    infos = " ".join(i.value for i in at.info)
    assert "learns from 4 labelled paragraphs from labels.csv" in infos
    assert at.session_state["submit_preparation"][1].model == expected  # the job would learn from them
    figures = next(d.value for d in at.dataframe if "cohen_kappa" in d.value.columns)
    assert figures["column"].tolist() == ["score"] and figures["n"].tolist() == [4]
    assert any("Expected agreement" in m.value for m in at.markdown)
