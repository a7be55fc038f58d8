"""Every error a user can fix, in one place: stages print its message on one line, no traceback.

Each is a `UserError`; the modules that raise one import it from here.
"""


class UserError(Exception):
    """Bad params, bad input or missing artifacts: the message says what and where."""


# --- params and artifacts ------------------------------------------------------------------------------------

class ParamError(UserError, ValueError):
    """A param is missing or invalid; the message names it."""


class ArtifactError(UserError, ValueError):
    """An artifact is missing, malformed or does not match its recorded checksum, shape or dtype."""


class RawStoreError(UserError):
    """The raw data set is missing or inconsistent with its manifest; the message names the file."""


class StageBusy(UserError):
    """Another process is running the same stage in this project."""


class ArrayError(UserError, ValueError):
    """An input array has the wrong shape, dtype or values; the message names it."""


# --- fetch ---------------------------------------------------------------------------------------------------

class FetchError(UserError):
    """The fetch cannot go on; the message is one line naming the file, URL or param at fault."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))  # one line, even around a library's multi-line text


class DownloadError(FetchError):
    """A download failed for good (after its retries, or at once for a 4xx)."""


class ChecksumError(DownloadError):
    """A file's sha256 differs from the pinned one."""


class SourceError(FetchError):
    """`fetch.source` cannot be read as any known kind of source; the message names it."""


class ArchiveError(FetchError):
    """An archive is unreadable or over a safety cap; the message names the archive."""


# --- the later stages ----------------------------------------------------------------------------------------

class InsufficientData(UserError, ValueError):
    """Too few images for what a stage needs."""


class PaletteError(UserError, ValueError):
    """The training pixels cannot support the requested palette."""


class BundleError(UserError, ValueError):
    """A model bundle is missing, incomplete or inconsistent."""


class NonFiniteTraining(UserError):
    """The loss or the weights became NaN or infinite: nothing is written."""
