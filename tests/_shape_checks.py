"""Switching jaxtyping's shape checks off for a block, where a test reads the library's own error.

``tests/conftest.py`` checks every function of the three packages against its jaxtyping
annotations. A wrong shape then stops at the first annotated function with jaxtyping's error; a
test of the message the library itself gives users (who run without the checks) wraps the call in
:func:`library_checks_only`.
"""

import contextlib
from collections.abc import Iterator

import jaxtyping


@contextlib.contextmanager
def library_checks_only() -> Iterator[None]:
    """Within the block, only the library's own checks run (jaxtyping's and beartype's are off)."""
    before = jaxtyping.config.jaxtyping_disable
    jaxtyping.config.update("jaxtyping_disable", True)
    try:
        yield
    finally:
        jaxtyping.config.update("jaxtyping_disable", before)
