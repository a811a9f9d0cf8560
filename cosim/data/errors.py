"""The error raised when a data file exists but does not hold what its format promises."""
from __future__ import annotations


class DataFormatError(ValueError):
    """A data file is malformed or refused; the message names the file and the record, chorale or step."""
