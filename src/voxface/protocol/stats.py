"""``voxface protocol stats``: who and what each trial list contains (the paper's Table 1)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from voxface.protocol.lists import SPLIT_NAMES, Protocol, VerificationList

# The paper's Table 1 age bands.
AGE_BANDS = ((0, 19, "<=19"), (20, 29, "20-29"), (30, 39, "30-39"), (40, 49, "40-49"),
             (50, 59, "50-59"), (60, 69, "60-69"), (70, 79, "70-79"), (80, 200, ">=80"))


def age_band(age: int) -> str:
    return next(label for low, high, label in AGE_BANDS if low <= age <= high)


@dataclass
class ListStats:
    name: str
    identities: int
    male: int
    female: int
    nationalities: Counter
    ages: Counter  # by band; empty when the metadata has no age
    trials: int
    positives: int


def list_stats(protocol: Protocol, trials: VerificationList) -> ListStats:
    numbers = set(trials.voice_speakers.tolist()) | set(trials.face_speakers.tolist())
    people = [protocol.identity_of_number[n] for n in numbers if n in protocol.identity_of_number]
    genders = Counter(p.gender for p in people)
    return ListStats(
        name=trials.name,
        identities=len(numbers),
        male=genders["m"],
        female=genders["f"],
        nationalities=Counter(p.nationality for p in people),
        ages=Counter(age_band(p.age) for p in people if p.age is not None),
        trials=len(trials),
        positives=int(trials.labels.sum()),
    )


def format_stats(protocol: Protocol, top_nationalities: int = 5) -> str:
    splits = Counter(protocol.splits.values())
    lines = [
        f"protocol: {protocol.source} ({len(protocol.identities)} identities; "
        + ", ".join(f"{SPLIT_NAMES.get(s, s)} {n}" for s, n in sorted(splits.items()))
        + ")",
        "",
        f"{'list':<22}{'ids':>5}{'m':>5}{'f':>5}{'nat':>5}{'trials':>8}{'pos':>7}  top nationalities",
    ]
    all_stats = [list_stats(protocol, trials) for trials in protocol.all_verification()]
    for s in all_stats:
        top = ", ".join(f"{nat} {n}" for nat, n in s.nationalities.most_common(top_nationalities))
        lines.append(
            f"{s.name:<22}{s.identities:>5}{s.male:>5}{s.female:>5}{len(s.nationalities):>5}"
            f"{s.trials:>8}{s.positives:>7}  {top}"
        )
    if any(s.ages for s in all_stats):
        lines += ["", f"{'list':<22}" + "".join(f"{label:>7}" for *_, label in AGE_BANDS)]
        for s in all_stats:
            lines.append(f"{s.name:<22}" + "".join(f"{s.ages[label]:>7}" for *_, label in AGE_BANDS))
    return "\n".join(lines)
