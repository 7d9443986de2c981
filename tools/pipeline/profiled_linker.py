"""`python -m tools.pipeline.profiled_linker`: the linker with the stack sampler running.

The sampler's totals go to `$REGSOSEK_PROFILE_OUT` (bench/pipeline.py diffs them around its phases).
"""

from __future__ import annotations

import os
from pathlib import Path

from tools.pipeline.sampler import StackSampler


def main() -> None:
    """Start the sampler, then run the linker exactly as `python -m services.linker` does."""
    StackSampler(Path(os.environ.get("REGSOSEK_PROFILE_OUT", "linker-profile.json"))).start()
    from services.linker.__main__ import main as linker_main

    linker_main()


if __name__ == "__main__":
    main()
