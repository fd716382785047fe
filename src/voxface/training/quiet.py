"""Lightning's messages that a voxface user cannot act on, switched off where they are emitted.

Lightning logs device facts, tips about its cloud products and which dataloader it loads at INFO on its
own loggers, and warns about things voxface does on purpose. ``voxface`` keeps its own progress bars,
step messages and warnings; ``--verbose`` (log level DEBUG) lets Lightning's INFO through again.
"""

from __future__ import annotations

import logging
import warnings

LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning")
EXPECTED_WARNINGS = (  # message patterns
    # Lightning 2.6 itself calls an API that torch 2.13 deprecates; nothing in voxface's hands.
    r".*isinstance\(treespec, LeafSpec\).*",
    # The frozen face teacher is in eval mode by design (its batch-norm statistics are the prior).
    r".*module\(s\) in eval mode at the start of training.*",
    # voxface's sampler resumes mid-epoch itself (IdentityBatchSampler.follow); Lightning cannot see that.
    r".*resuming from a checkpoint that ended before the epoch ended.*",
    # A resumed run writes into its own checkpoint folder.
    r".*Checkpoint directory .* exists and is not empty.*",
    # Stopped before the first validation (max_steps inside an epoch, val_every > 1) there is no val_auc yet
    # to rank best.ckpt by; the run's summary says "best: none yet" itself.
    r".*ModelCheckpoint\(monitor='val_auc'\)` could not find the monitored key.*",
)


def quiet_lightning() -> None:
    """Silence Lightning's INFO chatter (unless the root logger is at DEBUG) and the expected warnings."""
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        for name in LIGHTNING_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in EXPECTED_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
