"""Telco Customer Churn (IBM sample data, Apache-2.0): 7,043 customers, target ``Churn``.

Source: IBM's public repository ``IBM/telco-customer-churn-on-icp4d``,
``data/Telco-Customer-Churn.csv``, licensed Apache-2.0; vendored here gzip-compressed.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Literal, overload

import numpy as np
import pandas as pd

_FILE = "telco_churn.csv.gz"
ID_COLUMN = "customerID"
TARGET = "Churn"
TELCO_CATEGORICAL = (
    "gender",
    "Partner",
    "Dependents",
    "PhoneService",
    "MultipleLines",
    "InternetService",
    "OnlineSecurity",
    "OnlineBackup",
    "DeviceProtection",
    "TechSupport",
    "StreamingTV",
    "StreamingMovies",
    "Contract",
    "PaperlessBilling",
    "PaymentMethod",
)
_COMPETITION_SEED = 2024
_COMPETITION_TEST_FRACTION = 0.3


@dataclass(frozen=True)
class CompetitionData:
    """A Kaggle-shaped split: ``train`` has the target, ``test`` does not."""

    train: pd.DataFrame
    test: pd.DataFrame
    sample_submission: pd.DataFrame
    id_column: str = ID_COLUMN
    target: str = TARGET

    def __iter__(self):
        return iter((self.train, self.test, self.sample_submission))


def _read_raw() -> pd.DataFrame:
    with resources.files(__package__).joinpath("data", _FILE).open("rb") as fh:
        return pd.read_csv(fh, compression="gzip", dtype=str, keep_default_na=False)


def _typed(raw: pd.DataFrame) -> pd.DataFrame:
    df = pd.DataFrame(index=raw.index)
    df[ID_COLUMN] = raw[ID_COLUMN]
    for col in raw.columns:
        if col in (ID_COLUMN, TARGET):
            continue
        if col in TELCO_CATEGORICAL:
            df[col] = pd.Categorical(raw[col], categories=sorted(raw[col].unique()))
        elif col == "TotalCharges":
            # 11 new customers (tenure 0) have a blank TotalCharges: missing, not zero.
            df[col] = pd.to_numeric(raw[col].str.strip().replace("", np.nan), errors="raise").astype("float64")
        elif col == "MonthlyCharges":
            df[col] = raw[col].astype("float64")
        else:  # SeniorCitizen (0/1) and tenure (months)
            df[col] = raw[col].astype("int64")
    df[TARGET] = raw[TARGET].map({"No": 0, "Yes": 1}).astype("int64")
    return df


def _telco_full() -> pd.DataFrame:
    return _typed(_read_raw())


def _competition_split() -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    df = _telco_full()
    train, test = train_test_split(
        df, test_size=_COMPETITION_TEST_FRACTION, random_state=_COMPETITION_SEED, stratify=df[TARGET]
    )
    return train.sort_index().reset_index(drop=True), test.sort_index().reset_index(drop=True)


@overload
def load_telco(split: None = None) -> pd.DataFrame: ...
@overload
def load_telco(split: Literal["competition"]) -> CompetitionData: ...


def load_telco(split: Literal["competition"] | None = None) -> pd.DataFrame | CompetitionData:
    """Load the bundled Telco Customer Churn data with proper dtypes.

    ``TotalCharges`` is float (its 11 blanks are NaN), the service/contract columns are pandas
    ``category``, ``Churn`` is 0/1 and ``customerID`` is kept as the id column.
    ``split="competition"`` returns a fixed 70/30 stratified split as a :class:`CompetitionData`
    (``train``, ``test`` without ``Churn``, ``sample_submission``), the same on every machine.

    Parameters
    ----------
    split : {None, "competition"}, default None
        ``None`` for the full frame, ``"competition"`` for the fixed train/test split.

    Returns
    -------
    pandas.DataFrame or CompetitionData
        The 7043 customers, or the split.

    Raises
    ------
    ValueError
        On any other ``split``.

    Examples
    --------
    >>> df = load_telco()
    >>> df.shape, round(float(df["Churn"].mean()), 3)
    ((7043, 21), 0.265)
    >>> train, test, sample_submission = load_telco(split="competition")
    >>> train.shape, test.shape, list(sample_submission.columns)
    ((4930, 21), (2113, 20), ['customerID', 'Churn'])
    """
    if split is None:
        return _telco_full()
    if split != "competition":
        raise ValueError(f"unknown split {split!r}; use split=None for the full data or split='competition'")
    train, test = _competition_split()
    sample = pd.DataFrame({ID_COLUMN: test[ID_COLUMN].to_numpy(), TARGET: np.full(len(test), 0.5)})
    return CompetitionData(train=train, test=test.drop(columns=[TARGET]), sample_submission=sample)


def score_telco_submission(submission: pd.DataFrame) -> float:
    """ROC AUC of a competition submission against the hidden test labels (the "leaderboard").

    Parameters
    ----------
    submission : pandas.DataFrame
        ``customerID`` and the predicted ``Churn`` probability, one row per test customer.

    Returns
    -------
    float
        The ROC AUC.

    Raises
    ------
    ValueError
        When rows are missing or extra.

    Examples
    --------
    >>> data = load_telco("competition")
    >>> score_telco_submission(data.sample_submission)
    0.5
    """
    from sklearn.metrics import roc_auc_score

    _, test = _competition_split()
    missing = set(test[ID_COLUMN]) - set(submission[ID_COLUMN])
    if missing or len(submission) != len(test):
        raise ValueError(
            f"submission must have one row per test customer ({len(test)} rows); "
            f"it has {len(submission)} rows and lacks {len(missing)} test ids"
        )
    pred = submission.set_index(ID_COLUMN)[TARGET].reindex(test[ID_COLUMN])
    return float(roc_auc_score(test[TARGET].to_numpy(), pred.to_numpy()))
