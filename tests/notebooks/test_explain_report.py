"""The explanation report: inputs, importance table, and one self-contained HTML file via papermill."""

import base64
import io
import json
import re
from pathlib import Path

import joblib
import lightgbm as lgb
import nbformat
import numpy as np
import pytest
from _explain_figures import ink

from workbench.cli import main
from workbench.data import make_folds
from workbench.models import CVResult, train_cv
from workbench.notebooks import explain_report
from workbench.notebooks.explain_notebook import importance_table, individual_rows, load_inputs, notebook_path

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def small_cv(telco_xy):
    X, y = telco_xy
    model = lgb.LGBMClassifier(n_estimators=40, learning_rate=0.1, num_leaves=8, verbose=-1)
    return train_cv(model, X, y, make_folds(y, n_splits=3, random_state=0), progress=False)


def test_committed_notebook_is_clean_and_parameterised():
    assert notebook_path().resolve() == (ROOT / "notebooks" / "explain.ipynb").resolve()
    nb = nbformat.read(notebook_path(), as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "cv_dir = " in tagged[0].source and "model_path = " in tagged[0].source


def test_inputs_from_saved_cv_or_model_and_the_importance_table(tmp_path, small_cv, telco_xy):
    X, y = telco_xy
    small_cv.save(tmp_path / "run" / "artifacts" / "cv")
    inputs = load_inputs(cv_dir=tmp_path / "run")
    assert isinstance(inputs.model, CVResult) and list(inputs.X.columns) == small_cv.feature_names
    table = importance_table(inputs, n_repeats=2, random_state=0).to_frame()
    assert list(table.columns[:2]) == ["mean", "std"] and table.shape[1] == 2 + 2 * small_cv.n_splits
    np.testing.assert_allclose(table["mean"], table.iloc[:, 2:].mean(axis=1))
    assert table["mean"].is_monotonic_decreasing and {"Contract", "tenure"} <= set(table.index[:3])

    joblib.dump(small_cv.models[0], tmp_path / "model.joblib")
    X.assign(Churn=y).to_parquet(tmp_path / "data.parquet")
    plain = load_inputs(model_path=tmp_path / "model.joblib", data_path=tmp_path / "data.parquet")
    assert plain.info.task == "binary" and len(plain.X) == len(X) and "Churn" not in plain.X

    with pytest.raises(ValueError, match="not both"):
        load_inputs(cv_dir=tmp_path / "run", model_path=tmp_path / "model.joblib")
    with pytest.raises(FileNotFoundError, match="holds no saved CVResult"):
        load_inputs(cv_dir=tmp_path)
    X.iloc[:, :5].assign(Churn=y).to_parquet(tmp_path / "narrow.parquet")
    with pytest.raises(ValueError, match="features the data lacks.*pass data_path"):
        load_inputs(cv_dir=tmp_path / "run", data_path=tmp_path / "narrow.parquet")
    with pytest.raises(ValueError, match="no target column 'churn'"):
        load_inputs(data_path=tmp_path / "data.parquet", target="churn")


def test_individual_rows_pick_extremes(small_cv, telco_xy):
    from workbench.explain import shap_values

    X, _ = telco_xy
    sv = shap_values(small_cv, X.iloc[:300], max_rows=None)
    rows = individual_rows(sv, n=3)
    raw = sv.raw_prediction()
    assert rows[:2] == [int(np.argmax(raw)), int(np.argmin(raw))] and len(set(rows)) == 3


def _images(html_text: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', html_text)]


@pytest.mark.kernel
def test_report_is_one_self_contained_html_file(tmp_path, small_cv, telco_xy):
    from matplotlib.image import imread

    X, y = telco_xy
    out = explain_report(
        small_cv,
        X,
        y,
        out=tmp_path / "reports" / "telco.html",
        top=2,
        n_individual=2,
        max_rows=400,
        n_repeats=2,
        title="Telco churn model",
    )
    text = out.read_text()
    assert out == tmp_path / "reports" / "telco.html" and out.stat().st_mode & 0o044 == 0o044
    assert "<title>Telco churn model</title>" in text
    assert not re.search(r'<script[^>]+src=|<link[^>]+href="https?:|<img[^>]+src="https?:', text)  # opens offline
    assert "def " not in text and "report.load_inputs" not in text  # outputs only, no code
    for heading in ("Permutation importance", "Partial dependence and ICE", "SHAP values", "Individual predictions"):
        assert heading in text
    assert "SHAP values for 400 of 7,043 rows" not in text and "SHAP values for all 400 rows" in text
    assert "OOF 0.8" in text and "Contract" in text and "Traceback" not in text
    images = _images(text)
    assert len(images) == 1 + 2 + 3 + 2  # importance, 2 PDPs, beeswarm + bar + dependence, 2 waterfalls
    for png in images:
        assert ink(imread(io.BytesIO(png))[..., :3]) > 0.03


@pytest.mark.kernel
def test_notebook_runs_under_plain_papermill_and_trains_on_telco(tmp_path):
    import papermill

    out = tmp_path / "explain.ipynb"
    papermill.execute_notebook(
        str(ROOT / "notebooks" / "explain.ipynb"),
        str(out),
        kernel_name="python3",
        progress_bar=False,
        cwd=str(tmp_path),
        parameters={"quick_trees": 30, "top_k": 1, "n_individual": 1, "max_rows": 300, "n_repeats": 1},
    )
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert (
        sum("image/png" in o.get("data", {}) for o in outputs) == 1 + 1 + 3 + 1
    )  # importance, PDP, SHAP x3, waterfall
    text = json.dumps([o.get("data", {}).get("text/html", "") for o in outputs])
    assert "30-tree LightGBM trained with 5-fold CV on the bundled Telco churn data" in text


def test_cli_checks_its_inputs(tmp_path, capsys):
    assert main(["explain", "--cv", str(tmp_path / "missing"), "-o", str(tmp_path / "r.html")]) == 2
    assert "--cv" in capsys.readouterr().err and not (tmp_path / "r.html").exists()
    assert main(["explain", "--top-k", "0"]) == 2
    assert "--top-k and --max-rows must be positive" in capsys.readouterr().err


@pytest.mark.kernel
def test_cli_records_the_explanation_as_a_run(tmp_path, small_cv, monkeypatch, capsys):
    from workbench.runs.registry import list_runs

    small_cv.save(tmp_path / "train" / "artifacts" / "cv")
    monkeypatch.chdir(tmp_path)  # a relative --cv reaches the kernel as an absolute path
    args = ["explain", "--cv", "train", "--runs-dir", "runs", "-o", "copy.html", "--top-k", "1", "--max-rows", "300"]
    assert main([*args, "--no-progress"]) == 0
    out = capsys.readouterr().out
    runs = list_runs(tmp_path / "runs")
    assert list(runs["name"]) == ["explain"] and list(runs["state"]) == ["succeeded"]
    assert runs["param.cv_dir"][0] == str(tmp_path / "train") and runs["param.top_k"][0] == 1
    run_dir = next((tmp_path / "runs").glob("*/*"))
    assert f"report: {run_dir.relative_to(tmp_path) / 'report.html'}" in out and "wrote copy.html" in out
    assert (tmp_path / "copy.html").read_bytes() == (run_dir / "report.html").read_bytes()
    assert "Permutation importance" in (tmp_path / "copy.html").read_text()
