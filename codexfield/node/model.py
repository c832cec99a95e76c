"""The demo's model: a multinomial naive Bayes text classifier in NumPy, trained from a dataset
capsule (a CSV of `text,label`), saved as a model capsule directory, served by the gateway.

    model = train_from_csv("demo/dataset/tickets.csv")
    model.save("out/model", parent_capsule=1, chain_id=31337)   # weights + capsule.toml
    TextClassifier.load("out/model").predict("my parcel never arrived")

The model directory holds `log_prior.npy` (C), `log_likelihood.npy` (C x V), `vocab.json`
(vocabulary, classes, metrics) and `capsule.toml` with a model card, so
`codexfield pack DIR` hashes exactly what the node serves.

One MU of this model is `text.chars.100`: a call costs `1 + len(text) // 100` MU.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

METER_NAME = "text.chars.100"
MAX_INPUT_CHARS = 4_000
_TOKEN = re.compile(r"[a-z0-9']+")


def mu_for(text_or_len: str | int) -> int:
    """MU of one invocation: 1 + characters // 100 (`text.chars.100`)."""
    n = text_or_len if isinstance(text_or_len, int) else len(text_or_len)
    if n < 0:
        raise ValueError("input length cannot be negative")
    return 1 + n // 100


def tokens(text: str) -> list[str]:
    """Lower-cased word unigrams and adjacent bigrams."""
    words = _TOKEN.findall(text.lower())
    return words + [f"{a} {b}" for a, b in zip(words, words[1:])]


def read_csv(path: str | Path) -> tuple[list[str], list[str]]:
    """(texts, labels) of a `text,label` CSV with a header row."""
    texts, labels = [], []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            texts.append(row["text"])
            labels.append(row["label"])
    if not texts:
        raise ValueError(f"{path} holds no rows; expected a header 'text,label' and labelled rows")
    return texts, labels


@dataclass
class TextClassifier:
    vocab: list[str]
    classes: list[str]
    log_prior: np.ndarray
    log_likelihood: np.ndarray
    metrics: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._index = {w: i for i, w in enumerate(self.vocab)}

    # -- inference -------------------------------------------------------------------------

    def _counts(self, text: str) -> np.ndarray:
        x = np.zeros(len(self.vocab), dtype=np.float64)
        for t in tokens(text):
            i = self._index.get(t)
            if i is not None:
                x[i] += 1.0
        return x

    def predict_proba(self, text: str) -> dict[str, float]:
        scores = self.log_prior + self.log_likelihood @ self._counts(text)
        scores = np.exp(scores - scores.max())
        p = scores / scores.sum()
        return {c: float(v) for c, v in zip(self.classes, p)}

    def predict(self, text: str) -> dict[str, object]:
        proba = self.predict_proba(text)
        label = max(proba, key=proba.__getitem__)
        return {
            "label": label,
            "confidence": round(proba[label], 6),
            "probabilities": {k: round(v, 6) for k, v in proba.items()},
        }

    def accuracy(self, texts: Sequence[str], labels: Sequence[str]) -> float:
        hits = sum(self.predict(t)["label"] == y for t, y in zip(texts, labels))
        return hits / max(1, len(texts))

    # -- persistence -----------------------------------------------------------------------

    def save(self, directory: str | Path, *, parent_capsule: int | None = None, creator: str | None = None) -> Path:
        """Write the weights and a `capsule.toml` (model card) into `directory`."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        np.save(d / "log_prior.npy", self.log_prior)
        np.save(d / "log_likelihood.npy", self.log_likelihood)
        (d / "vocab.json").write_text(
            json.dumps(
                {"vocab": self.vocab, "classes": self.classes, "metrics": self.metrics, "meter": METER_NAME},
                sort_keys=True,
            )
        )
        training = [int(parent_capsule)] if parent_capsule is not None else []
        lines = [
            "# Model capsule of the CodexField demo (written by codexfield.node.model).",
            'name = "Support ticket router (naive Bayes)"',
            'kind = "model"',
            'description = "Multinomial naive Bayes over word unigrams and bigrams; routes a support ticket '
            'to billing, technical, account or shipping."',
            'version = "1.0.0"',
        ]
        if creator:
            lines.append(f'creator = "{creator}"')
        if parent_capsule is not None:
            lines.append(f"parents = [{parent_capsule}]")
        lines += [
            "",
            "[model_card]",
            'task = "text-classification"',
            'architecture = "multinomial naive Bayes (Laplace smoothing), NumPy"',
            f"parameters = {int(self.log_likelihood.size + self.log_prior.size)}",
            'language = "en"',
            f"training_data = {json.dumps(training)}",
            'intended_use = "routing short English support tickets in demos"',
            'limitations = "trained on 360 synthetic tickets; four fixed classes"',
        ]
        if "accuracy" in self.metrics:
            lines.append(
                f'metrics = [{{ name = "accuracy", value = {self.metrics["accuracy"]:.4f}, split = "held-out 25%" }}]'
            )
        (d / "capsule.toml").write_text("\n".join(lines) + "\n")
        return d

    @classmethod
    def load(cls, directory: str | Path) -> TextClassifier:
        """Load from the model capsule's directory, or from its CAR (`codexfield pack --car`)."""
        d = Path(directory)
        if d.is_file():  # a capsule CAR: the same files, every block hash-checked (codexfield.car)
            from codexfield.car import capsule_reader

            read = capsule_reader(d)
        else:
            read = lambda name: (d / name).read_bytes()  # noqa: E731
        meta = json.loads(read("vocab.json"))
        return cls(
            vocab=list(meta["vocab"]),
            classes=list(meta["classes"]),
            log_prior=np.load(io.BytesIO(read("log_prior.npy"))),
            log_likelihood=np.load(io.BytesIO(read("log_likelihood.npy"))),
            metrics=dict(meta.get("metrics", {})),
        )


def train(texts: Sequence[str], labels: Sequence[str], alpha: float = 1.0) -> TextClassifier:
    """Fit multinomial naive Bayes with Laplace smoothing `alpha`."""
    classes = sorted(set(labels))
    vocab = sorted({t for text in texts for t in tokens(text)})
    index = {w: i for i, w in enumerate(vocab)}
    counts = np.zeros((len(classes), len(vocab)), dtype=np.float64)
    prior = np.zeros(len(classes), dtype=np.float64)
    cidx = {c: i for i, c in enumerate(classes)}
    for text, y in zip(texts, labels):
        k = cidx[y]
        prior[k] += 1
        for t in tokens(text):
            counts[k, index[t]] += 1
    smoothed = counts + alpha
    log_likelihood = np.log(smoothed / smoothed.sum(axis=1, keepdims=True))
    log_prior = np.log(prior / prior.sum())
    return TextClassifier(vocab=vocab, classes=classes, log_prior=log_prior, log_likelihood=log_likelihood)


def train_from_csv(path: str | Path, holdout: float = 0.25, seed: int = 7) -> TextClassifier:
    """Train on a deterministic split of the CSV and record the held-out accuracy."""
    texts, labels = read_csv(path)
    order = np.random.default_rng(seed).permutation(len(texts))
    cut = int(len(texts) * (1 - holdout))
    tr, te = order[:cut], order[cut:]
    model = train([texts[i] for i in tr], [labels[i] for i in tr])
    model.metrics = {
        "accuracy": round(model.accuracy([texts[i] for i in te], [labels[i] for i in te]), 4),
        "train_records": int(len(tr)),
        "test_records": int(len(te)),
    }
    return model
