"""Where the Python tests find the shared capture set beside a full
checkout (../shared). FLOWER_SHARED_DIR overrides the place; scripts/test
points it at an empty directory once to prove that a lone clone passes.
Every test that reads the set goes through shared_dir() and skips, saying
why, when the part it needs is absent. The C++ tests use shared_data.h."""
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def shared_dir():
    return os.environ.get("FLOWER_SHARED_DIR") or os.path.normpath(os.path.join(HERE, "..", "..", "shared"))


def no_shared_data(missing):
    return "no shared capture set at %s (a lone clone has none; FLOWER_SHARED_DIR names another)" % missing
