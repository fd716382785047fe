"""The VoxSynth identity model: who a person is, and what their voice and face are made of.

Each identity has demographics ``z = (gender, nationality, age)`` and a shared latent ``s ~ N(0, I)``.
Its voice and face are controlled by *knobs* (normalised parameters the renderers turn into sound and
pixels), linear-Gaussian given ``z``:

    voice knobs  v = mu_v(z) + c * B_v s + private_v,     face knobs  f = mu_f(z) + c * B_f s + private_f

and every clip or frame adds a small sample-level jitter to its identity's knobs. Demographics shape
both modalities (pitch and face shape by gender, accent and skin tone by nationality, breathiness and
grey hair by age); ``s`` links the two beyond demographics; the private parts do not. So a voice tells
something, not everything, about a face, and the best possible voice-face scorer is known
(``oracle.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VOICE_KNOBS = ("pitch", "tract", "jitter", "breath", "accent1", "accent2", "tilt", "nasal")
FACE_KNOBS = ("aspect", "jaw", "eye_gap", "eye_size", "nose_len", "nose_wid", "mouth", "lips", "brow",
              "skin_light", "skin_warm", "hair_dark", "grey", "wrinkles", "hair_len")
GENDERS = ("m", "f")
# (name, share, skin_light, skin_warm, hair_dark, accent1, accent2): skewed like VoxCeleb1's metadata.
NATIONALITIES = (
    ("USA", 0.50, 0.3, 0.0, 0.0, 0.0, 0.0),
    ("UK", 0.14, 0.5, -0.2, -0.3, 0.8, 0.3),
    ("Canada", 0.05, 0.4, 0.0, -0.1, 0.2, -0.3),
    ("India", 0.05, -1.0, 0.6, 1.0, 1.2, -1.0),
    ("Australia", 0.04, 0.5, 0.1, -0.3, -0.6, 0.9),
    ("Ireland", 0.03, 0.8, -0.3, -0.5, 0.9, 1.0),
    ("Germany", 0.03, 0.6, -0.2, -0.3, -1.0, -0.6),
    ("Mexico", 0.03, -0.4, 0.7, 0.8, -0.9, 1.1),
    ("China", 0.03, 0.1, 0.4, 1.3, -1.5, -0.2),
    ("Italy", 0.03, 0.0, 0.3, 0.6, -0.3, 1.4),
    ("France", 0.03, 0.4, 0.0, 0.1, -1.3, 0.6),
    ("Nigeria", 0.02, -1.8, 0.2, 1.4, 0.3, -1.5),
    ("Sweden", 0.02, 1.2, -0.4, -1.2, 0.4, -1.2),
)
AGES = np.arange(16, 86)  # whole years
AGE_MEAN, AGE_SD = 42.0, 13.0
SHARED_DIM = 4
# Shared-latent loadings (rows: knobs, columns: the 4 latent factors): "head size" links vocal-tract
# length to face proportions, "timbre" links spectral tilt to nose and lips, and so on.
VOICE_LOADINGS = {"pitch": (-0.3, 0, 0, 0.5), "tract": (0.7, 0, 0, 0), "jitter": (0, 0, 0.3, 0),
                  "breath": (0, 0, 0, 0.4), "tilt": (0, 0.7, 0, 0), "nasal": (0, 0.3, 0.6, 0)}
FACE_LOADINGS = {"aspect": (0.6, 0, 0, 0), "jaw": (0.5, 0, 0, 0), "eye_gap": (0, 0, 0.4, 0),
                 "eye_size": (0, 0, 0, 0.6), "nose_len": (0, 0, 0.6, 0), "nose_wid": (0, 0.6, 0, 0),
                 "mouth": (0, 0, 0, 0.5), "lips": (0, 0.4, 0, 0)}
# Effect of being female (+1) rather than male (-1), and of age in standard deviations.
VOICE_GENDER = {"pitch": 1.2, "tract": -1.0, "breath": 0.4, "tilt": 0.3}
FACE_GENDER = {"aspect": 0.5, "jaw": -1.0, "brow": -0.8, "hair_len": 1.2, "lips": 0.6, "eye_size": 0.4}
VOICE_AGE = {"jitter": 1.3, "breath": 0.8, "pitch": -0.3}
FACE_AGE = {"grey": 1.4, "wrinkles": 1.4, "eye_size": -0.2}


def age_prior() -> np.ndarray:
    """P(age) over ``AGES``: a discretised normal, as both the generator and the oracle use it."""
    weights = np.exp(-0.5 * ((AGES - AGE_MEAN) / AGE_SD) ** 2)
    return weights / weights.sum()


@dataclass(frozen=True)
class IdentityModel:
    """The generative model's constants. ``coupling`` scales the shared latent's loadings."""

    coupling: float = 0.92
    sample_sd: float = 0.12  # clip-to-clip / frame-to-frame jitter of every knob
    nationality_effect: float = 2.2  # scales the nationality table's skin, hair and accent offsets
    gender_effect: float = 1.7  # scales VOICE_GENDER and FACE_GENDER
    age_effect: float = 1.0  # scales VOICE_AGE and FACE_AGE

    def loadings(self, knobs: tuple[str, ...], table: dict[str, tuple]) -> np.ndarray:
        return self.coupling * np.array([table.get(k, (0.0,) * SHARED_DIM) for k in knobs], dtype=np.float64)

    @property
    def voice_loadings(self) -> np.ndarray:
        return self.loadings(VOICE_KNOBS, VOICE_LOADINGS)

    @property
    def face_loadings(self) -> np.ndarray:
        return self.loadings(FACE_KNOBS, FACE_LOADINGS)

    @staticmethod
    def private_sd(loadings: np.ndarray) -> np.ndarray:
        """Private spread that tops each knob's identity-level variance (beyond demographics) up to 1."""
        return np.sqrt(np.clip(1.0 - (loadings**2).sum(axis=1), 0.15, None))

    def voice_mean(self, gender: np.ndarray, nationality: np.ndarray, age: np.ndarray) -> np.ndarray:
        return _demographic_mean(VOICE_KNOBS, VOICE_GENDER, VOICE_AGE, {"accent1": 5, "accent2": 6},
                                 gender, nationality, age, self)

    def face_mean(self, gender: np.ndarray, nationality: np.ndarray, age: np.ndarray) -> np.ndarray:
        return _demographic_mean(FACE_KNOBS, FACE_GENDER, FACE_AGE,
                                 {"skin_light": 2, "skin_warm": 3, "hair_dark": 4}, gender, nationality, age, self)

    def covariances(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Covariances of one voice sample and one face sample given ``z``: (vv, ff, vf of one identity)."""
        bv, bf = self.voice_loadings, self.face_loadings
        sample = self.sample_sd**2
        vv = bv @ bv.T + np.diag(self.private_sd(bv) ** 2 + sample)
        ff = bf @ bf.T + np.diag(self.private_sd(bf) ** 2 + sample)
        return vv, ff, bv @ bf.T


def _demographic_mean(knobs, gender_effect, age_effect, nationality_columns, gender, nationality, age,
                      model: IdentityModel):
    gender = np.asarray(gender)
    sign = np.where(gender == 1, 1.0, -1.0)  # 0 = m, 1 = f
    age_z = (np.asarray(age, dtype=np.float64) - AGE_MEAN) / AGE_SD
    table = np.array([row[2:] for row in NATIONALITIES])
    mean = np.zeros((len(sign), len(knobs)))
    for j, knob in enumerate(knobs):
        mean[:, j] += (model.gender_effect * gender_effect.get(knob, 0.0) * sign
                       + model.age_effect * age_effect.get(knob, 0.0) * age_z)
        if knob in nationality_columns:
            mean[:, j] += model.nationality_effect * table[np.asarray(nationality), nationality_columns[knob] - 2]
    return mean


@dataclass
class Population:
    """Identities drawn from the model: demographics, identity-level knobs."""

    gender: np.ndarray  # 0 = m, 1 = f
    nationality: np.ndarray  # index into NATIONALITIES
    age: np.ndarray  # years
    voice: np.ndarray  # (n, len(VOICE_KNOBS)) identity-level voice knobs
    face: np.ndarray  # (n, len(FACE_KNOBS))
    rate: np.ndarray  # speaking rate: a private voice trait that says nothing about the face


def draw_population(model: IdentityModel, count: int, rng: np.random.Generator) -> Population:
    shares = np.array([row[1] for row in NATIONALITIES])
    gender = rng.integers(0, 2, count)
    nationality = rng.choice(len(NATIONALITIES), size=count, p=shares / shares.sum())
    age = rng.choice(AGES, size=count, p=age_prior())
    shared = rng.standard_normal((count, SHARED_DIM))
    bv, bf = model.voice_loadings, model.face_loadings
    voice = (model.voice_mean(gender, nationality, age) + shared @ bv.T
             + rng.standard_normal((count, len(VOICE_KNOBS))) * model.private_sd(bv))
    face = (model.face_mean(gender, nationality, age) + shared @ bf.T
            + rng.standard_normal((count, len(FACE_KNOBS))) * model.private_sd(bf))
    return Population(gender, nationality, age, voice, face, rng.standard_normal(count))
