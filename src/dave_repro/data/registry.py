"""Where each dataset comes from, in every form the download stage accepts.

A dataset has one or more *forms*: sets of files that each carry enough to build the same
interactions. The canonical form is the original public file; other forms are equivalent
re-publications (e.g. ml-1m as all user–movie pairs plus each user's latest item). Every file has a
pinned checksum where one is published. A file without one (``checksum=None``: Amazon's
``Digital_Music.csv``) is trusted on first use: its sha256 is recorded in the checksum lock
(``checksums.lock.json``, see :mod:`fetch` and ``docs/data.md``) and every later download is
verified against it, unless ``params.yaml`` pins it (``data.checksums``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

GROUPLENS = "https://files.grouplens.org/datasets/movielens"
NCF_RAW = "https://raw.githubusercontent.com/hexiangnan/neural_collaborative_filtering/master/Data"
EALS_RAW = "https://raw.githubusercontent.com/hexiangnan/sigir16-eals/master/data"
APR_RAW = (
    "https://raw.githubusercontent.com/hexiangnan/adversarial_personalized_ranking/master/Data"
)
AMAZON_2018 = "https://jmcauley.ucsd.edu/data/amazon_v2/categoryFilesSmall"


@dataclass(frozen=True)
class Member:
    """A file taken out of an archive."""

    name: str  # local name under data/raw/<dataset>/
    path: str  # path inside the archive
    checksum: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class SourceFile:
    """One file of a form: fetched from ``url`` or from ``<mirror>/<dataset>/<mirror_path>``."""

    name: str  # local name under data/raw/<dataset>/ (for archives: the archive's own name)
    mirror_path: str
    url: str | None  # canonical public URL; None when only a mirror can provide it
    checksum: str | None  # "<algorithm>:<hex>"; None: none published (trusted on first use)
    size: int | None = None  # expected bytes, when known (caps downloads and extraction)
    members: tuple[Member, ...] = ()  # non-empty: a zip archive whose members are kept

    @property
    def is_archive(self) -> bool:
        return bool(self.members)

    def outputs(self) -> list[str]:
        return [m.name for m in self.members] if self.members else [self.name]


@dataclass(frozen=True)
class SourceForm:
    name: str
    description: str
    files: tuple[SourceFile, ...]
    canonical: bool = False
    reader: str = ""  # readers.read_form_<reader>(raw_dir) turns the files into rows

    def outputs(self) -> list[str]:
        return [o for f in self.files for o in f.outputs()]


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str
    forms: tuple[SourceForm, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)
    table: int | None = None  # the paper's table of results on it (None: not in the paper)

    def form(self, name: str) -> SourceForm:
        for f in self.forms:
            if f.name == name:
                return f
        raise KeyError(name)


ML100K_UDATA = "sha256:06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"
ML1M_RATINGS = "git-sha1:77a7c4b150f588c23bb9e1f068aa996c0b413695"

REGISTRY: dict[str, DatasetSpec] = {
    "ml-100k": DatasetSpec(
        "ml-100k",
        "MovieLens 100K",
        (
            SourceForm(
                "grouplens-archive",
                "GroupLens ml-100k.zip (u.data taken out)",
                (
                    SourceFile(
                        "ml-100k.zip",
                        "ml-100k.zip",
                        f"{GROUPLENS}/ml-100k.zip",
                        "md5:0e33842e24a9c977be4e0107933c0723",
                        4_924_029,
                        members=(Member("u.data", "ml-100k/u.data", ML100K_UDATA, 1_979_173),),
                    ),
                ),
                canonical=True,
                reader="movielens_100k",
            ),
            SourceForm(
                "grouplens-files",
                "GroupLens u.data as a plain file",
                (SourceFile("u.data", "u.data", None, ML100K_UDATA, 1_979_173),),
                canonical=True,
                reader="movielens_100k",
            ),
        ),
        table=4,
    ),
    "ml-1m": DatasetSpec(
        "ml-1m",
        "MovieLens 1M",
        (
            SourceForm(
                "grouplens-archive",
                "GroupLens ml-1m.zip (ratings.dat taken out)",
                (
                    SourceFile(
                        "ml-1m.zip",
                        "ml-1m.zip",
                        f"{GROUPLENS}/ml-1m.zip",
                        "md5:c4d9eecfca2ab87c1945afe126590906",
                        5_917_549,
                        members=(
                            Member("ratings.dat", "ml-1m/ratings.dat", ML1M_RATINGS, 24_594_131),
                        ),
                    ),
                ),
                canonical=True,
                reader="movielens_1m",
            ),
            SourceForm(
                "grouplens-files",
                "GroupLens ratings.dat as a plain file",
                (SourceFile("ratings.dat", "ratings.dat", None, ML1M_RATINGS, 24_594_131),),
                canonical=True,
                reader="movielens_1m",
            ),
            SourceForm(
                "pairs-plus-latest",
                "all 1,000,209 user-movie pairs (ReSN LightGCN files, union of train and test) "
                "plus each user's latest movie with its timestamp (NCF test file in MovieIDs)",
                (
                    SourceFile(
                        "pairs_train.txt",
                        "interactions_resn/train.txt",
                        None,
                        "sha256:917e2eabe7d102a603c8594f522a1569cb69d26d63f0d9d2f071f0a6d2ea0149",
                        3_804_955,
                    ),
                    SourceFile(
                        "pairs_test.txt",
                        "interactions_resn/test.txt",
                        None,
                        "sha256:c52de8b0cb2fe1eec9c9746a16127636fa1236aed023179a44d303b69f1a4078",
                        972_969,
                    ),
                    SourceFile(
                        "latest.tsv",
                        "derived/ncf_test_movieid.tsv",
                        None,
                        "sha256:7d70e3fa681f54762d2f38a32e02264e2088616d8d27b9c7435bc59e47cb3367",
                        234_705,
                    ),
                ),
                reader="pairs_plus_latest",
            ),
        ),
        notes=(
            "The pairs-plus-latest form carries a timestamp only for each user's latest movie; "
            "the other interactions get a null timestamp. One user's latest movie is ambiguous "
            "among 3 candidates: they are tied at the latest timestamp and the seeded tie-break picks one.",
        ),
        table=5,
    ),
    "yelp": DatasetSpec(
        "yelp",
        "Yelp",
        (
            SourceForm(
                "eals",
                "yelp.rating of hexiangnan/sigir16-eals (repeated ratings included)",
                (
                    SourceFile(
                        "yelp.rating",
                        "eals/yelp.rating",
                        f"{EALS_RAW}/yelp.rating",
                        "git-sha1:60b4b3fe23bac9fdbf0ca5252a193033f93cf7d6",
                    ),
                ),
                canonical=True,
                reader="yelp_eals",
            ),
            SourceForm(
                "apr-split",
                "APR's yelp.train.rating + yelp.test.rating (the same data, already filtered)",
                (
                    SourceFile(
                        "yelp.train.rating",
                        "apr/yelp.train.rating",
                        f"{APR_RAW}/yelp.train.rating",
                        "git-sha1:b812277d9adc8391e0b4cdc6d8d5af551d554b0c",
                    ),
                    SourceFile(
                        "yelp.test.rating",
                        "apr/yelp.test.rating",
                        f"{APR_RAW}/yelp.test.rating",
                        "sha256:0680223ab00b2fb5694ab5c45f349ed23ddb2f60ed83d7eb1727861cdd4ff5f8",
                        660_506,
                    ),
                ),
                reader="yelp_apr_split",
            ),
        ),
        table=6,
    ),
    "digital-music": DatasetSpec(
        "digital-music",
        "Digital Music",
        (
            SourceForm(
                "amazon-2018",
                "Digital_Music.csv, ratings only (item,user,rating,timestamp), Ni et al. 2018",
                (
                    SourceFile(
                        "Digital_Music.csv",
                        "amazon2018/Digital_Music.csv",
                        f"{AMAZON_2018}/Digital_Music.csv",
                        None,
                    ),
                ),
                canonical=True,
                reader="amazon_ratings",
            ),
        ),
        notes=(
            "No checksum of Digital_Music.csv is published: its first download records its sha256 "
            "in checksums.lock.json (trust on first use; review and commit it), later downloads "
            "are verified against that; a sha256 pinned in params.yaml (data.checksums) wins.",
            "The 2014 subsets in the project's mirror are not the paper's data and are never used here.",
        ),
        table=7,
    ),
    "pinterest": DatasetSpec(
        "pinterest",
        "Pinterest",
        (
            SourceForm(
                "ncf",
                "NCF pinterest-20.train.rating + pinterest-20.test.rating",
                (
                    SourceFile(
                        "pinterest-20.train.rating",
                        "ncf/pinterest-20.train.rating",
                        f"{NCF_RAW}/pinterest-20.train.rating",
                        "git-sha1:99813f8ed7486c36fa0f405e3f400db5d6fed0be",
                    ),
                    SourceFile(
                        "pinterest-20.test.rating",
                        "ncf/pinterest-20.test.rating",
                        f"{NCF_RAW}/pinterest-20.test.rating",
                        "sha256:3a8a8f7eb8e21cc5928b8259dd2c265269ecfa219d92ba829249956aa293d732",
                        807_267,
                    ),
                ),
                canonical=True,
                reader="pinterest_ncf",
            ),
        ),
        table=8,
    ),
}


def spec(dataset: str) -> DatasetSpec:
    from ..errors import ConfigError

    if dataset not in REGISTRY:
        raise ConfigError([f"dataset: unknown dataset {dataset!r} (known: {', '.join(REGISTRY)})"])
    return REGISTRY[dataset]
