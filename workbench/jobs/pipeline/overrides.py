"""``-p`` names of a pipeline run: pipeline parameters, and one step's (or one expansion's) notebook parameters.

``-p seed=1`` sets the pipeline parameter ``seed``; ``-p train.learning_rate=0.1`` sets notebook
parameter ``learning_rate`` of step ``train`` (every expansion of a ``foreach`` step);
``-p train-lgbm.learning_rate=0.1`` sets it for the expansion ``train-lgbm`` only, as does
``-p 'train[lgbm].learning_rate=0.1'`` (quoted: shells expand brackets). What the names refer to is
checked against the pipeline in :mod:`.spec`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_STEP_PARAM = re.compile(r"^([a-z0-9][-a-z0-9]*)(?:\[([^\[\]]+)\])?\.([A-Za-z_]\w*)$")
FORMS = "-p NAME=VALUE (a pipeline parameter), -p STEP.PARAM=VALUE or -p 'STEP[KEY].PARAM=VALUE'"


@dataclass(frozen=True)
class StepOverride:
    """One ``-p STEP.PARAM=VALUE`` or ``-p STEP[KEY].PARAM=VALUE``: ``key`` is the expansion key (``None``: all)."""

    name: str
    group: str
    key: str | None
    param: str
    text: str

    @property
    def shown(self) -> str:
        """The override as the user wrote it (for messages)."""
        return f"-p {self.name}={self.text}"


def split_overrides(overrides: Mapping[str, str]) -> tuple[dict[str, str], list[StepOverride]]:
    """``-p`` texts split into pipeline parameters and step parameters.

    Parameters
    ----------
    overrides : mapping of str to str
        Each ``-p`` name and its text.

    Returns
    -------
    tuple
        ``{name: text}`` for pipeline parameters, and the :class:`StepOverride` of each name with a ``.``.

    Raises
    ------
    ValueError
        A name with ``.`` or ``[`` that is not ``STEP.PARAM`` or ``STEP[KEY].PARAM``.

    Examples
    --------
    >>> params, steps = split_overrides({"seed": "1", "train[lgbm].learning_rate": "0.1"})
    >>> params, [(s.group, s.key, s.param) for s in steps]
    ({'seed': '1'}, [('train', 'lgbm', 'learning_rate')])
    """
    params: dict[str, str] = {}
    steps: list[StepOverride] = []
    for name, text in overrides.items():
        if "." not in name and "[" not in name:
            params[name] = text
            continue
        match = _STEP_PARAM.match(name)
        if match is None:
            raise ValueError(
                f"-p {name}=...: not a parameter name; write {FORMS} "
                "(STEP is a step of the file, KEY one of its foreach expansions: -p train-lgbm.learning_rate=0.1 "
                "is -p 'train[lgbm].learning_rate=0.1')"
            )
        group, key, param = match.groups()
        steps.append(StepOverride(name, group, key.strip() if key else None, param, text))
    return params, steps
