"""Errors a user can act on.

Every failure the pipeline expects (bad parameters, a corrupt download, a malformed row, a
checkpoint from another run) is raised as a :class:`DaveError`; the CLI prints its message and
exits non-zero without a traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class DaveError(Exception):
    """Base class: the message is written for the user."""

    exit_code = 2


class ConfigError(DaveError):
    """Invalid parameters; lists every problem with its key path."""

    def __init__(self, problems: list[str], source: str = "params") -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s) in {source}:\n{lines}")


class DataFormatError(DaveError):
    """A file does not have the shape its reader relies on."""

    def __init__(self, path: object, reason: str, line: int | None = None) -> None:
        self.path, self.line, self.reason = str(path), line, reason
        where = f"{path}, line {line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {reason}")


class ChecksumError(DaveError):
    def __init__(self, name: str, expected: str, actual: str) -> None:
        self.name, self.expected, self.actual = name, expected, actual
        super().__init__(
            f"checksum mismatch for {name}: expected {expected}, got {actual}; the file was removed"
        )


class DownloadError(DaveError):
    pass


class ArchiveError(DaveError):
    pass


class SourceUnavailableError(DaveError):
    """None of a dataset's accepted source forms could be found."""


class TrainingError(DaveError):
    pass


class CheckpointError(DaveError):
    pass


class WorkspaceLockedError(DaveError):
    exit_code = 3


class Terminated(BaseException):  # noqa: N818 (named for what happened, like KeyboardInterrupt)
    """SIGTERM arrived (a scheduler, Snakemake, ``kill``): the run unwinds as from Ctrl-C.

    A ``BaseException``, so no ``except Exception`` on the way can swallow it and carry on;
    every ``atomic`` writer removes its temporary and every lock is released as it passes.
    """

    exit_code = 143  # 128 + SIGTERM, what a shell reports for a process killed by it
