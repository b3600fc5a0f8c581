"""Bulk scoring on a Ray cluster (`index --ray`, `score --ray`), the optional [cluster] extra.

No Qt. `ray` is imported only inside this package and only when --ray is given (`connect.py`);
`ray_scoring.py` runs the same decode (indexing.pipeline.prepare_photo) and the same scorer
(indexing.stream.score_photos) as the local path, in Ray Data decode tasks and a pool of scoring
actors, and hands the results back to the caller, which writes them (the catalog's batches, or
the rows of `score`).
"""

from __future__ import annotations

MISSING_EXTRA = "--ray needs the [cluster] extra: pip install 'clipiqa-desktop[cluster]'"


class ClusterError(RuntimeError):
    """The cluster cannot be used: Ray is not installed, the address is wrong or unreachable, or
    the job failed on the cluster. One line for the user; the command exits with status 2."""
