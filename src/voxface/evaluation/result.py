"""What ``voxface evaluate`` found for one run, the record the reports and plots read."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Evaluation:
    """Per list the metrics (``verification``, ``matching``, ``retrieval``), the trials lost to missing files, the
    encoder calls, the scores themselves (labels, scores) for the plots, the backend's fit and the decomposition."""

    verification: dict[str, dict] = field(default_factory=dict)
    matching: dict[str, dict] = field(default_factory=dict)
    retrieval: dict[str, dict] = field(default_factory=dict)
    lost_trials: dict[str, int] = field(default_factory=dict)
    encoded: dict[str, int] = field(default_factory=dict)
    scores: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)  # (labels, cosines)
    # per list, the indices of the trials that ``scores`` holds (those whose voice and face were embedded), so that
    # two runs' scores of the same list pair up trial by trial
    trial_rows: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    backend_scores: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)  # llrs
    backend: dict = field(default_factory=dict)  # the backend's folder and fit, when one scored
    decomposition: dict = field(default_factory=dict)  # decomposition.py: references, probes, demographics
    warnings: list[str] = field(default_factory=list)  # what the report's header must say (e.g. leakage)
    test_identities: int | None = None  # the unseen-unheard identities the lists score (report.few_identities_caveat)
    plots: list[str] = field(default_factory=list)
    face_files_by_identity: dict[int, list[str]] = field(default_factory=dict, repr=False)

    def to_json(self) -> dict:
        return {"verification": self.verification, "matching": self.matching, "retrieval": self.retrieval,
                "lost_trials": self.lost_trials, "encoded": self.encoded, "plots": self.plots,
                **({"backend": self.backend} if self.backend else {}),
                **({"decomposition": self.decomposition} if self.decomposition else {}),
                **({"warnings": self.warnings} if self.warnings else {}),
                **({"test_identities": self.test_identities} if self.test_identities is not None else {})}
