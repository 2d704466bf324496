"""The median rule for scores so far: :class:`FoldMedianPruner`, the pruner behind ``pruner="median"``.

Optuna's ``MedianPruner`` compares a trial's *best* intermediate value so far with the median of
the completed trials' values at the current step. That reads intermediate values as a learning
curve that only improves, which cross-validation scores are not: folds differ in difficulty more
than good configurations differ from one another (on Telco one model's fold AUCs run from 0.826 to
0.860, while the configurations a TPE search proposes differ by a few thousandths). A trial's best
value is then its easiest fold, whether it is pruned depends on the order of the folds rather than
on the trial, and fine trials are pruned at the last fold, after all their work is done.

:class:`FoldMedianPruner` compares like with like: the trial's value at its latest step against
the median of the completed trials' values at that same step. ``train_cv`` reports, after fold
``k``, the score of the out-of-fold predictions of folds ``0..k`` (the same rows for every trial,
and after the last fold the trial's own objective), and does not ask the pruner after the last fold.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import optuna
from optuna.study import StudyDirection
from optuna.trial import TrialState

from ..data.validation import check_whole_number


class FoldMedianPruner(optuna.pruners.BasePruner):
    """Prune a trial whose value at its latest step is worse than the median of the completed
    trials' values at that step.

    Report values that sum up the work so far (a cross-validated score over the folds so far, a
    validation loss): each step is then judged on its own, the same way for every trial.

    Parameters
    ----------
    n_startup_trials : int, default 3
        No pruning until this many trials have completed. Optuna's ``MedianPruner`` waits for 5,
        for learning curves of any shape; here each completed trial brings, at every step, its own
        objective on the same rows, and three is the fewest whose median is a middle value rather
        than an average of two. Each trial run before pruning starts costs a whole trial.
    n_warmup_steps : int, default 0
        No pruning before this step (the first fold is already a full evaluation on its rows).

    Examples
    --------
    >>> import optuna
    >>> study = optuna.create_study(direction="maximize", pruner=FoldMedianPruner(n_startup_trials=1))
    >>> done = study.ask(); done.report(0.86, 0); done.report(0.84, 1); _ = study.tell(done, 0.84)
    >>> trial = study.ask(); trial.report(0.87, 0); trial.should_prune()
    False
    >>> trial.report(0.83, 1); trial.should_prune()  # Optuna's MedianPruner keeps it: its best, 0.87, > 0.84
    True
    """

    def __init__(self, n_startup_trials: int = 3, n_warmup_steps: int = 0) -> None:
        self.n_startup_trials = check_whole_number(n_startup_trials, "n_startup_trials", 0)
        self.n_warmup_steps = check_whole_number(n_warmup_steps, "n_warmup_steps", 0)

    def prune(self, study: Any, trial: Any) -> bool:
        """True when ``trial`` (a frozen trial of ``study``) falls behind the median at its latest step."""
        step = trial.last_step
        if step is None or step < self.n_warmup_steps:
            return False
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not complete or len(complete) < self.n_startup_trials:
            return False
        value = trial.intermediate_values[step]
        others = [t.intermediate_values.get(step, math.nan) for t in complete]
        others = [v for v in others if not math.isnan(v)]
        if math.isnan(value) or not others:
            return False
        median = float(np.median(others))
        return value < median if study.direction == StudyDirection.MAXIMIZE else value > median
