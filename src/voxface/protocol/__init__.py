"""The benchmark protocol: metadata, identity splits, trial lists, data layout and manifests."""

from voxface.protocol.layout import DataRoots
from voxface.protocol.lists import (
    MATCHING_DIRECTIONS,
    MATCHING_GROUPS,
    SPLIT_TEST,
    SPLIT_TRAIN,
    SPLIT_VAL,
    TEST_SETS,
    VERIFICATION_GROUPS,
    Identity,
    MatchingList,
    Protocol,
    VerificationList,
    load_protocol,
)
from voxface.protocol.manifest import Manifest, build_manifest

__all__ = [
    "MATCHING_DIRECTIONS", "MATCHING_GROUPS", "SPLIT_TEST", "SPLIT_TRAIN", "SPLIT_VAL", "TEST_SETS",
    "VERIFICATION_GROUPS", "DataRoots", "Identity", "Manifest", "MatchingList", "Protocol",
    "VerificationList", "build_manifest", "load_protocol",
]
