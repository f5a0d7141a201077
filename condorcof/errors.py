"""Exceptions raised by condorcof: one base class, one subclass per condition."""

from __future__ import annotations


class CondorcofError(Exception):
    """Base class of every error condorcof raises on purpose."""

    exit_code = 1


class FilesetError(CondorcofError):
    """The fileset is malformed or names files that do not exist."""


class PreprocessError(CondorcofError):
    """A file could not be opened or lacks the requested tree."""


class PlanError(CondorcofError):
    """Planning options are invalid or a saved plan cannot be read."""


class ProcessorLoadError(CondorcofError):
    """The processor named on the command line cannot be imported or built."""


class AccumulatorError(CondorcofError):
    """Two accumulator values cannot be added together."""


class UnsafePickleError(CondorcofError):
    """A pickle refers to a class outside the restricted loader's allowlist."""


class ChunkFailedError(CondorcofError):
    """The processor or the input failed on one chunk."""


class InputFileError(ChunkFailedError):
    """An input file of a chunk could not be opened or its tree read."""


class IncompleteResultError(CondorcofError):
    """The final merge found missing or duplicated chunks, or wrong event totals."""


class SiteProfileError(CondorcofError):
    """A site profile is unknown or invalid."""


class SubmitError(CondorcofError):
    """The workflow could not be written or submitted."""


class ScheddError(CondorcofError):
    """The schedd could not be reached or refused a request."""


class RunNotFoundError(CondorcofError):
    """No run directory matches the given name or path."""


class MissingBranchError(ChunkFailedError, AttributeError, KeyError):
    """A processor asked the events of a chunk for a branch or collection the tree lacks.

    It is also an ``AttributeError`` (so ``hasattr(events, "Muon")`` works) and a ``KeyError``
    (so ``events["Muon"]`` can be caught like a mapping lookup).
    """

    __str__ = Exception.__str__


class OptionalDependencyError(CondorcofError):
    """An optional third-party package that a feature needs is not installed."""


class CredentialError(CondorcofError):
    """A grid credential (x509 proxy, bearer token) is missing, unreadable or expired."""
