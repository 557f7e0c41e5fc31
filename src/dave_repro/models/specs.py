"""Hyper-parameter schemas of every model family.

Kept free of torch so that validating params.yaml (and parsing the Snakefile) stays fast.
A model entry in params.yaml names its ``family``; the family's schema checks the rest.
``null`` for ``embedding_dim``, ``batch_size`` or ``negative_ratio`` means "the dataset's paper
setting" (``hparams.<dataset>``, Section 4.1.4).
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
        "reduction": Str(choices=("sum", "per_entry", "mean")),
        "loss_weights": Map(
            {
                "reconstruction": Float(min=0.0),
                "regularizer": Float(min=0.0),
                "prediction": Float(min=0.0, exclusive_min=True),
            }
        ),
        "eval_embedding": Str(choices=("mean", "sample")),
        "precision": Str(choices=("fp32", "bf16")),
        "decoder_sample": Float(min=0.0, exclusive_min=True, max=1.0),
        "embedding_dim": _dataset_setting(1),
        "batch_size": _dataset_setting(1),
        "negative_ratio": _dataset_setting(1),
    }
)

ITEMPOP = Map({"family": Str(choices=("itempop",))})

# -- the nine baselines (Section 4.1.3); values and sources in params.yaml, docs/models.md ------
POSITIVE = Float(min=0.0, exclusive_min=True)
SHARE = Float(min=0.0, max=1.0)
WIDTHS = List(Int(min=1), min_len=1)
EPOCH_PASSES = Int(min=1)  # passes over the training data that one trainer epoch makes


def _family(name: str) -> Str:
    return Str(choices=(name,))


NEUMF = Map(
    {
        "family": _family("neumf"),
        "factors": Int(min=1),
        "mlp_layers": List(Int(min=2), min_len=1),
        "negative_ratio": _dataset_setting(1),
        "batch_size": _dataset_setting(1),
        "lr": POSITIVE,
        "pretrain_passes": Int(min=0),
        "pretrain_alpha": SHARE,
        "finetune_optimizer": Str(choices=("adam", "sgd")),
        "epoch_passes": EPOCH_PASSES,
    }
)
APR = Map(
    {
        "family": _family("apr"),
        "embedding_dim": _dataset_setting(1),
        "batch_size": Int(min=1),
        "lr": POSITIVE,
        "reg": Float(min=0.0),
        "eps": Float(min=0.0),
        "reg_adv": Float(min=0.0),
        "pretrain_passes": Int(min=0),
        "epoch_passes": EPOCH_PASSES,
    }
)
CDAE = Map(
    {
        "family": _family("cdae"),
        "hidden": Int(min=1),
        "hidden_activation": Str(choices=("sigmoid", "relu", "tanh")),
        "corruption": Float(min=0.0, max=0.99),
        "reg": Float(min=0.0),
        "lr": POSITIVE,
        "batch_size": Int(min=1),
        "epoch_passes": EPOCH_PASSES,
    }
)
ACAE = Map(
    {
        "family": _family("acae"),
        "hidden": Int(min=1),
        "hidden_activation": Str(choices=("sigmoid", "relu", "tanh")),
        "eps": Float(min=0.0),
        "reg_adv": Float(min=0.0),
        "noise": Map({k: Float(min=0.0) for k in ("encoder", "user", "hidden", "decoder")}),
        "reg": Float(min=0.0),
        "lr": POSITIVE,
        "batch_size": Int(min=1),
        "pretrain_passes": Int(min=0),
        "epoch_passes": EPOCH_PASSES,
    }
)
CFGAN = Map(
    {
        "family": _family("cfgan"),
        "scheme": Str(choices=("ZP", "ZR", "PM")),
        "g_hidden": Int(min=1),
        "g_layers": Int(min=1),
        "d_hidden": Int(min=1),
        "d_layers": Int(min=1),
        "g_lr": POSITIVE,
        "d_lr": POSITIVE,
        "g_reg": Float(min=0.0),
        "d_reg": Float(min=0.0),
        "g_batch_size": Int(min=1),
        "d_batch_size": Int(min=1),
        "g_passes": Int(min=1),
        "d_passes": Int(min=1),
        "zr_ratio": SHARE,
        "pm_ratio": SHARE,
        "zr_coefficient": Float(min=0.0),
        "epoch_passes": EPOCH_PASSES,
    }
)
AVB_FIELDS = {
    "embedding_dim": _dataset_setting(1),
    "encoder_hidden": WIDTHS,
    "decoder_hidden": POSITIVE_INTS,
    "critic_hidden": WIDTHS,
    "noise_dim": Int(min=1),
    "lr": POSITIVE,
    "critic_lr": POSITIVE,
    "beta1": Float(min=0.0, max=0.999),
    "batch_size": Int(min=1),
    "epoch_passes": EPOCH_PASSES,
}
AVB = Map({"family": _family("avb"), **AVB_FIELDS})
VAEGAN = Map(
    {
        "family": _family("vaegan"),
        **AVB_FIELDS,
        "discriminator_hidden": WIDTHS,
        "gan_weight": Float(min=0.0),
        "contractive_weight": Float(min=0.0),
    }
)
CVAE_GAN = Map(
    {
        "family": _family("cvae-gan"),
        "embedding_dim": _dataset_setting(1),
        "encoder_hidden": WIDTHS,
        "generator_hidden": WIDTHS,
        "discriminator_hidden": WIDTHS,
        "classifier_hidden": WIDTHS,
        "lr": POSITIVE,
        "beta1": Float(min=0.0, max=0.999),
        "batch_size": Int(min=1),
        "loss_weights": Map(
            {
                k: Float(min=0.0)
                for k in ("kl", "encoder_pairwise", "generator_pairwise", "mean_matching")
            }
        ),
        "epoch_passes": EPOCH_PASSES,
    }
)
RECVAE = Map(
    {
        "family": _family("recvae"),
        "hidden": Int(min=1),
        "latent": Int(min=1),
        "lr": POSITIVE,
        "batch_size": Int(min=1),
        "gamma": Float(min=0.0),
        "dropout": Float(min=0.0, max=0.99),
        "encoder_passes": Int(min=1),
        "decoder_passes": Int(min=1),
        "epoch_passes": EPOCH_PASSES,
    }
)


@dataclass(frozen=True)
class Family:
    """One model family, declared once: what the registry builds, what params.yaml's entries of
    the family are checked against, which module its code (and code hash) is, whether the noise
    study can corrupt its inputs, and the paper's names of its models in the paper's row order."""

    schema: Spec
    module: str  # models/<module>.py
    cls: str  # the Recommender subclass in it
    reads_vectors: (
        bool  # its prediction reads the interaction vectors (Section 4.2.2 corrupts them)
    )
    models: dict[str, str] = field(default_factory=dict)  # model name -> the paper's name


# In the paper's row order (Tables 4-8); ItemPop is ours, last.
FAMILIES: dict[str, Family] = {
    "cdae": Family(CDAE, "cdae", "CDAE", True, {"cdae": "CDAE"}),
    "apr": Family(APR, "apr", "APR", False, {"apr": "APR"}),
    "acae": Family(ACAE, "acae", "ACAE", True, {"acae": "ACAE"}),
    "cfgan": Family(CFGAN, "cfgan", "CFGAN", True, {"cfgan": "CFGAN"}),
    "neumf": Family(NEUMF, "neumf", "NeuMF", False, {"neumf": "NeuMF"}),
    "avb": Family(AVB, "avb", "AVB", True, {"avb": "AVB"}),
    "vaegan": Family(VAEGAN, "vaegan", "VAEGAN", True, {"vaegan": "VAEGAN"}),
    "cvae-gan": Family(CVAE_GAN, "cvae_gan", "CVAEGAN", True, {"cvae-gan": "CVAE-GAN"}),
    "recvae": Family(RECVAE, "recvae", "RecVAE", True, {"recvae": "RecVAE"}),
    "dave": Family(
        DAVE,
        "dave",
        "DAVE",
        True,
        {"dave-adv": "DAVE-adv", "dave-aae": "DAVE+aae", "dave": "DAVE"},
    ),
    "itempop": Family(ITEMPOP, "itempop", "ItemPop", False, {"itempop": "ItemPop"}),
}

# Derived: every known model name with its display name, in the paper's order; the baselines.
DISPLAY = {m: name for fam in FAMILIES.values() for m, name in fam.models.items()}
MODEL_FAMILY = {m: f for f, fam in FAMILIES.items() for m in fam.models}
OWN = ("dave", "itempop")  # the paper's own models and our floor; every other family is a baseline
BASELINES = tuple(m for m, f in MODEL_FAMILY.items() if f not in OWN)
DAVE_MODELS = tuple(FAMILIES["dave"].models)
PAPER_ORDER = [m for m in DISPLAY if m != "itempop"]
READS_INTERACTION_VECTORS = {f for f, fam in FAMILIES.items() if fam.reads_vectors}
