"""Check a Kaggle-style submission against the competition's ``sample_submission`` before uploading it."""

from __future__ import annotations

import numpy as np
import pandas as pd


def check_submission(submission: pd.DataFrame, sample_submission: pd.DataFrame, probabilities: bool = True) -> None:
    """Raise ``ValueError`` unless ``submission`` has the sample's columns (same order), the same
    ids in the same order, no missing predictions and, with ``probabilities``, every prediction
    within [0, 1]. The first column of the sample is the id column.

    Parameters
    ----------
    submission : pandas.DataFrame
        The predictions to upload.
    sample_submission : pandas.DataFrame
        The competition's sample: id column first, then the prediction columns.
    probabilities : bool, default True
        Also require every prediction to lie within [0, 1].

    Raises
    ------
    ValueError
        Naming the first difference (columns, row count, ids, missing or out-of-range values).

    Examples
    --------
    >>> from workbench.datasets import load_telco
    >>> data = load_telco("competition")
    >>> submission = data.sample_submission.assign(Churn=0.5)
    >>> check_submission(submission, data.sample_submission)
    >>> check_submission(submission.iloc[:-1], data.sample_submission)
    Traceback (most recent call last):
    ...
    ValueError: submission has 2112 rows, sample_submission 2113; predict exactly one row per test id
    """
    if not isinstance(submission, pd.DataFrame) or not isinstance(sample_submission, pd.DataFrame):
        raise TypeError("check_submission compares two pandas DataFrames")
    expected, got = list(sample_submission.columns), list(submission.columns)
    if got != expected:
        missing = [c for c in expected if c not in got]
        extra = [c for c in got if c not in expected]
        detail = f"missing {missing}, unexpected {extra}" if missing or extra else "same columns in another order"
        raise ValueError(
            f"submission columns {got} differ from sample_submission {expected} ({detail}); "
            f"select them as submission[{expected}]"
        )
    if len(submission) != len(sample_submission):
        raise ValueError(
            f"submission has {len(submission)} rows, sample_submission {len(sample_submission)}; "
            "predict exactly one row per test id"
        )
    id_col = expected[0]
    ids, sample_ids = submission[id_col].to_numpy(), sample_submission[id_col].to_numpy()
    mismatch = np.flatnonzero(pd.Series(ids).astype(str).to_numpy() != pd.Series(sample_ids).astype(str).to_numpy())
    if mismatch.size:
        i = int(mismatch[0])
        same_set = set(map(str, ids)) == set(map(str, sample_ids))
        how = "the same ids in another order" if same_set else "other ids"
        raise ValueError(
            f"submission has {how}: {mismatch.size} rows differ, first at row {i} "
            f"({ids[i]!r} where sample_submission has {sample_ids[i]!r}); "
            f"align it with sample_submission[[{id_col!r}]].merge(predictions, on={id_col!r}, how='left')"
        )
    preds = submission[expected[1:]]
    nan_rows = np.flatnonzero(preds.isna().any(axis=1).to_numpy())
    if nan_rows.size:
        raise ValueError(
            f"submission has missing predictions in {nan_rows.size} rows (first rows {nan_rows[:5].tolist()}); "
            "every test id needs a prediction"
        )
    if probabilities:
        values = preds.to_numpy(dtype=float)
        bad = np.flatnonzero(((values < 0) | (values > 1)).any(axis=1))
        if bad.size:
            raise ValueError(
                f"{bad.size} predictions are outside [0, 1] (min {values.min():.4g}, max {values.max():.4g}, "
                f"first rows {bad[:5].tolist()}); submit probabilities, not scores or labels"
            )
