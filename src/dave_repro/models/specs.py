"""Hyper-parameter schemas of every model family.

Kept free of torch so that validating params.yaml (and parsing the Snakefile) stays fast.
A model entry in params.yaml names its ``family``; the family's schema checks the rest.
``null`` for ``embedding_dim``, ``batch_size`` or ``negative_ratio`` means "the dataset's paper
setting" (``hparams.<dataset>``, Section 4.1.4).
"""

from __future__ import annotations

from ..schema import Bool, Float, Int, List, Map, Spec, Str

POSITIVE_INTS = List(Int(min=1), min_len=0)
ACTIVATIONS = ("tanh", "relu", "sigmoid")

# Fields whose null means "take the dataset's paper setting".
DATASET_SETTINGS = ("embedding_dim", "batch_size", "negative_ratio")


def _dataset_setting(min_value: int) -> Int:
    return Int(min=min_value, nullable=True)


DAVE = Map(
    {
        "family": Str(choices=("dave",)),
        "regularizer": Str(choices=("adversarial", "kl")),
        "stochastic": Bool(),
        "encoder_hidden": POSITIVE_INTS,
        "decoder_hidden": POSITIVE_INTS,
        "activation": Str(choices=ACTIVATIONS),
        "discriminator_hidden": POSITIVE_INTS,
        "discriminator_input": Str(choices=("embedding", "embedding+input")),
        "predictor_hidden": List(Int(min=1), min_len=1),
        "lr": Float(min=0.0, exclusive_min=True),
        "d_lr": Float(min=0.0, exclusive_min=True),
        "weight_decay": Float(min=0.0),
        "d_steps": Int(min=1),
        "reduction": Str(choices=("sum", "mean")),
        "loss_weights": Map(
            {
                "reconstruction": Float(min=0.0),
                "regularizer": Float(min=0.0),
                "prediction": Float(min=0.0, exclusive_min=True),
            }
        ),
        "eval_embedding": Str(choices=("mean", "sample")),
        "precision": Str(choices=("fp32", "bf16")),
        "embedding_dim": _dataset_setting(1),
        "batch_size": _dataset_setting(1),
        "negative_ratio": _dataset_setting(1),
    }
)

ITEMPOP = Map({"family": Str(choices=("itempop",))})

FAMILIES: dict[str, Spec] = {
    "dave": DAVE,
    "itempop": ITEMPOP,
}

# Families that learn nothing: trained in one pass, no epochs, no checkpoints to resume.
NON_ITERATIVE = {"itempop"}

# Families whose prediction reads the user's (and item's) interaction vectors, so that the
# noise study (Section 4.2.2) can corrupt those inputs at test time.
READS_INTERACTION_VECTORS = {"dave"}
