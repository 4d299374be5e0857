"""The one exception the sandbox harness raises.

Exception
 └── SandboxError   a host could not be built, booted, reached or torn down;
                    the message names what failed and what to look at.
"""

from __future__ import annotations


class SandboxError(Exception):
    """A sandbox operation failed; the message says what and where to look."""
