"""The explanation report: one self-contained HTML file, made by running ``explain.ipynb``.

:func:`explain_report` saves the model and data, executes the packaged notebook with papermill
(so the job runner can run the very same notebook) and converts it with nbconvert into a single
HTML file: figures embedded as PNG data, no code cells, no scripts fetched from the web. The
notebook itself uses the helpers here: :func:`load_inputs` (a saved ``CVResult``, a saved model,
or a quick LightGBM on the bundled Telco data), :func:`model_summary`, :func:`importance_table`,
:func:`individual_rows` and :func:`show_figure`.
"""

from __future__ import annotations

import html
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..data.validation import Interval, check_X_y, renamed_params, validate_params
from ..explain.model_info import ModelInfo, describe
from ..jobs.report import render_report
from ..runs.records import TRAINING_DATA_ARTIFACT

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..explain.permutation_result import PermutationImportances

NOTEBOOK = "explain.ipynb"
_DATA_FILE = "data.parquet"
_MODEL_FILE = "model.joblib"


@dataclass
class ReportInputs:
    """What the report explains: ``model`` (a fitted model or a CVResult) on features ``X``, target ``y``."""

    model: Any
    X: pd.DataFrame
    y: pd.Series
    source: str

    @property
    def info(self) -> ModelInfo:
        return describe(self.model)


def notebook_path() -> Path:
    """The explanation notebook, ``notebooks/explain.ipynb`` (shipped in ``workbench.notebooks``)."""
    from . import notebook_path as reference

    return reference("explain")


def _read_data(path: Path, trust: bool = False) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix in (".csv", ".gz"):
        return pd.read_csv(path)
    if suffix in (".pkl", ".pickle"):
        from ..models.persist import open_trusted

        with open_trusted(path, trust, fix="trust=True (workbench explain --trust)") as fh:
            return pd.read_pickle(fh)
    raise ValueError(f"cannot read data from {path.name}: use a .parquet, .csv or .pkl file")


def _find_cv_dir(path: Path) -> Path:
    from ..runs.records import ARTIFACTS_DIR, CV_ARTIFACT

    for candidate in (path, path / CV_ARTIFACT, path / ARTIFACTS_DIR / CV_ARTIFACT):
        if (candidate / "result.json").is_file():
            return candidate
    raise FileNotFoundError(f"{path} holds no saved CVResult (looked for result.json in it, cv/ and artifacts/cv/)")


def _telco(target: str) -> tuple[pd.DataFrame, pd.Series]:
    from ..data import infer_schema
    from ..datasets import load_telco

    df = load_telco()
    schema = infer_schema(df, target=target)
    return df[schema.features], df[schema.target]


@renamed_params(seed="random_state")
def load_inputs(
    cv_dir: str | os.PathLike[str] = "",
    model_path: str | os.PathLike[str] = "",
    data_path: str | os.PathLike[str] = "",
    target: str = "Churn",
    random_state: int = 0,
    quick_trees: int = 200,
    trust: bool = False,
) -> ReportInputs:
    """The model and data to explain, from the notebook's parameters.

    ``cv_dir``: a saved :class:`~workbench.models.CVResult` (or a run directory holding one as
    ``cv/`` or ``artifacts/cv/``); ``model_path``: a fitted model saved with joblib. ``data_path``:
    the rows with features and ``target`` (for a CVResult, its training data); without it, the
    ``training_data.parquet`` saved beside the CVResult (``train.ipynb`` writes one), else the
    bundled Telco data. Given neither model, a LightGBM with ``quick_trees`` trees is trained
    with 5-fold CV on Telco, its folds and trees seeded by ``random_state``. ``trust``: unpickle
    models and data another user wrote (without it, only your own pickles load; a CVResult's
    LightGBM and skops models load from anyone).
    """
    from ..data import make_folds
    from ..models import CVResult, default_lgbm, train_cv
    from ..models.persist import load_pickle

    fix = "trust=True (workbench explain --trust)"

    if cv_dir and model_path:
        raise ValueError("pass cv_dir or model_path, not both")
    cv_path = _find_cv_dir(Path(cv_dir)) if cv_dir else None
    if cv_path is not None and not data_path and (cv_path.parent / TRAINING_DATA_ARTIFACT).is_file():
        data_path = cv_path.parent / TRAINING_DATA_ARTIFACT
    if data_path:
        frame = _read_data(Path(data_path), trust)
        if target not in frame.columns:
            raise ValueError(f"{data_path} has no target column {target!r}; its columns: {list(frame.columns)[:12]}")
        X, y, source = frame.drop(columns=[target]), frame[target], Path(data_path).name
    else:
        X, y = _telco(target)
        source = "the bundled Telco churn data"
    if cv_path is not None:
        cv = CVResult.load(cv_path, trust=trust)
        missing = [f for f in cv.feature_names if f not in X.columns]
        if missing:
            raise ValueError(
                f"the CVResult was trained on features the data lacks ({missing[:5]}); "
                "pass data_path= the data it was trained on"
            )
        return ReportInputs(cv, X[cv.feature_names], y, f"CVResult {Path(cv_dir).name} on {source}")
    if model_path:
        model = load_pickle(model_path, trust=trust, fix=fix)
        return ReportInputs(model, X, y, f"{type(model).__name__} from {Path(model_path).name} on {source}")
    folds = make_folds(y, kind="stratified", n_splits=5, random_state=random_state)
    estimator = default_lgbm(
        "binary" if y.nunique() == 2 else "multiclass",
        random_state=random_state,
        n_estimators=quick_trees,
        learning_rate=0.05,
    )
    cv = train_cv(estimator, X, y, folds, progress=False)
    return ReportInputs(cv, X, y, f"a {quick_trees}-tree LightGBM trained with 5-fold CV on {source}")


# ---------------------------------------------------------------------------- model and scores


def _encoded_target(info: ModelInfo, y: pd.Series) -> np.ndarray:
    if info.classes is None:
        return y.to_numpy(dtype=np.float64)
    classes = list(info.classes)
    unknown = set(pd.unique(y)) - set(classes)
    if unknown:
        raise ValueError(
            f"the target has values {sorted(map(str, unknown))[:5]} the model never saw (classes {classes})"
        )
    return np.asarray([classes.index(v) for v in y])


def _predict(model: Any, info: ModelInfo, X: pd.DataFrame) -> np.ndarray:
    """What the CV metrics score: P(positive class), class probabilities, or predictions."""
    from ..models import CVResult

    if isinstance(model, CVResult):
        return model.predict(X)
    if info.task == "regression":
        return np.asarray(model.predict(X), dtype=np.float64)
    proba = np.asarray(model.predict_proba(X), dtype=np.float64)
    return proba[:, 1] if info.task == "binary" else proba


def _metric(model: Any, info: ModelInfo) -> Any:
    from ..models import CVResult, get_metric

    return model.get_metric() if isinstance(model, CVResult) else get_metric(None, info.task)


def model_summary(inputs: ReportInputs) -> str:
    """HTML: the model, the data, and its CV scores (CVResult) or its score on the data."""
    from ..models import CVResult

    esc = html.escape
    model, info = inputs.model, inputs.info
    head = (
        f"<p><b>Explained:</b> {esc(inputs.source)}<br><b>Task:</b> {esc(info.task)}; "
        f"<b>rows:</b> {len(inputs.X):,}; <b>features:</b> {inputs.X.shape[1]}</p>"
    )
    if isinstance(model, CVResult):
        folds = model.to_frame()
        folds = folds.dropna(axis=1, how="all")
        for col in ("n_train", "n_val", "best_iteration"):
            if col in folds:
                folds[col] = ["" if pd.isna(v) else f"{int(v):,}" for v in pd.to_numeric(folds[col], errors="coerce")]
        table = folds.to_html(index=False, float_format=lambda v: f"{v:.4f}", na_rep="")
        return head + model._repr_html_() + "<h4>Folds</h4>" + table
    metric = _metric(model, info)
    score = metric(_encoded_target(info, inputs.y), _predict(model, info, inputs.X))
    params = model.get_params() if hasattr(model, "get_params") else {}
    shown = {k: v for k, v in params.items() if v is not None and not callable(v)}
    rows = "".join(f"<tr><td>{esc(str(k))}</td><td>{esc(str(v))}</td></tr>" for k, v in list(shown.items())[:20])
    return (
        head + f"<p><b>{esc(type(model).__name__)}</b>, {esc(metric.name)} on these rows: {score:.5f} "
        "(held-out data gives an honest estimate; training rows flatter the model)</p>"
        f"<table><thead><tr><th>parameter</th><th>value</th></tr></thead><tbody>{rows}</tbody></table>"
    )


# ----------------------------------------------------------------------- permutation importance


def importance_table(inputs: ReportInputs, n_repeats: int = 5, random_state: int = 0) -> PermutationImportances:
    """Permutation importance (drop in the metric when a feature is shuffled), largest first.

    A CVResult is scored fold by fold on its own validation rows (no leakage) and the folds
    pooled (:func:`~workbench.explain.cv_permutation_importance`); a plain model on all of ``X``
    with the scorer of its task's default metric.
    """
    from ..explain.permutation import permutation_importance
    from ..explain.selection import cv_permutation_importance
    from ..models import CVResult

    model, info = inputs.model, inputs.info
    if isinstance(model, CVResult) and len(model.folds) == len(inputs.X):
        return cv_permutation_importance(
            model, inputs.X, inputs.y, n_repeats=n_repeats, random_state=random_state, progress=False
        )
    metric = _metric(model, info)
    sign = 1.0 if metric.greater_is_better else -1.0

    def scorer(estimator: Any, X_: pd.DataFrame, y_: np.ndarray) -> float:
        return sign * metric(_encoded_target(info, pd.Series(y_)), _predict(estimator, describe(estimator), X_))

    return permutation_importance(
        model,
        inputs.X,
        inputs.y.to_numpy(),
        scoring=scorer,
        n_repeats=n_repeats,
        random_state=random_state,
        progress=False,
    )


# -------------------------------------------------------------------------------- presentation


def individual_rows(sv: Any, n: int = 3) -> list[int]:
    """Positions of rows worth a waterfall: the highest and lowest raw score, then the middle."""
    raw = sv.raw_prediction()
    order = np.argsort(raw, kind="stable")
    picks = [int(order[-1]), int(order[0]), int(order[len(order) // 2])]
    extra = [int(i) for i in np.linspace(0, len(order) - 1, num=max(n, 3) + 2).astype(int)[1:-1]]
    out: list[int] = []
    for i in picks + [int(order[j]) for j in extra]:
        if i not in out:
            out.append(i)
    return out[:n]


def show_figure(fig: Figure, dpi: int = 100, alt: str | None = None) -> None:
    """Display a figure in the notebook as an embedded PNG with alternative text (any backend).

    ``alt`` defaults to the figure's first axes title.
    """
    import base64

    from IPython.display import display

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    if alt is None:
        titles = [ax.get_title(loc) for ax in fig.axes for loc in ("left", "center") if ax.get_title(loc)]
        alt = titles[0] if titles else "figure"
    tag = f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"/>'
    display({"image/png": data, "text/html": tag}, raw=True)


# ------------------------------------------------------------------------------------ the file


def run_notebook(parameters: dict[str, Any], out: str | os.PathLike[str], timeout: int = 1200) -> Path:
    """Execute ``explain.ipynb`` with ``parameters`` through papermill and write it as HTML to ``out``."""
    import nbformat
    import papermill

    out = Path(out)
    with tempfile.TemporaryDirectory(prefix="workbench-report-") as tmp:
        executed = Path(tmp) / NOTEBOOK
        papermill.execute_notebook(
            str(notebook_path()),
            str(executed),
            parameters=parameters,
            kernel_name="python3",
            progress_bar=False,
            cwd=tmp,
            execution_timeout=timeout,
        )
        notebook = nbformat.read(executed, as_version=4)
    return render_report(notebook, out, title=str(parameters.get("title", "Model explanation")), hide_input=True)


@renamed_params(top_k="top")
@validate_params(
    {
        "top": [Interval(int, 1, None)],
        "n_individual": [Interval(int, 1, None)],
        "max_rows": [Interval(int, 1, None)],
        "n_repeats": [Interval(int, 1, None)],
        "random_state": [Interval(int, 0, 2**32, closed="left")],
    }
)
def explain_report(
    model: Any,
    X: Any,
    y: Any,
    out: str | os.PathLike[str] = "report.html",
    *,
    top: int = 5,
    n_individual: int = 3,
    max_rows: int = 2000,
    n_repeats: int = 5,
    random_state: int = 0,
    title: str = "Model explanation",
    timeout: int = 1200,
) -> Path:
    """Write one self-contained HTML report explaining ``model`` on ``X``, ``y``.

    Sections: model and CV summary; permutation importance (table and plot); PD/ICE of the
    ``top`` most important features; SHAP summary and ``n_individual`` waterfalls. A
    :class:`~workbench.models.CVResult` is explained on its training data (permutation importance
    on each fold's validation rows); a fitted model is explained on ``X``, ``y`` as given (pass
    held-out rows). ICE and SHAP use at most ``max_rows`` rows (a seeded sample).

    Parameters
    ----------
    model : fitted tree model or CVResult
        The model explained.
    X : DataFrame
        The rows explained.
    y : array-like
        Their target.
    out : path, default "report.html"
        Where the HTML file is written (atomically).
    top : int, default 5
        Features given a PD/ICE plot.
    n_individual : int, default 3
        Rows given a SHAP waterfall.
    max_rows : int, default 2000
        Most rows for ICE and SHAP.
    n_repeats : int, default 5
        Permutations per feature.
    random_state : int, default 0
        Seed of the samples and permutations.
    title : str, default "Model explanation"
        The report's title.
    timeout : int, default 1200
        Seconds the report's notebook may run.

    Returns
    -------
    pathlib.Path
        The written report.

    The report executes a notebook in a kernel (tens of seconds), so the example is not run:

    .. code-block:: python

        explain_report(cv, X, y, out="runs/telco/explain.html")
    """
    import joblib

    if not isinstance(X, pd.DataFrame):
        raise ValueError("explain_report needs X as a pandas DataFrame (feature names label the report)")
    y = pd.Series(np.asarray(y), name="__target__")
    check_X_y(X, y)
    describe(model)  # fail early on an unfitted model
    with tempfile.TemporaryDirectory(prefix="workbench-explain-") as tmp:
        from ..models import CVResult

        data = X.reset_index(drop=True).assign(__target__=y.to_numpy())
        data.to_parquet(Path(tmp) / _DATA_FILE)
        params: dict[str, Any] = {"data_path": str(Path(tmp) / _DATA_FILE), "target": "__target__"}
        if isinstance(model, CVResult):
            params["cv_dir"] = str(model.save(Path(tmp) / "cv"))
        else:
            joblib.dump(model, Path(tmp) / _MODEL_FILE)
            params["model_path"] = str(Path(tmp) / _MODEL_FILE)
        params.update(
            top_k=int(top),
            n_individual=int(n_individual),
            max_rows=int(max_rows),
            n_repeats=int(n_repeats),
            seed=int(random_state),
            title=title,
        )
        return run_notebook(params, out, timeout=timeout)
