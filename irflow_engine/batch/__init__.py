"""Scale-out restoration of many files on Ray: `irflow restore-batch` and `restore_batch()`.

`plan` turns inputs into work items, `manifest` records what happened to each, `ray_runner`
runs the items on a Ray cluster (a local one by default): images through a Ray Data pipeline of
engine actors, videos as one task per file.
"""

from .manifest import Manifest
from .plan import BatchJob, WorkItem, plan_work
from .ray_runner import BatchSummary, restore_batch

__all__ = ["BatchJob", "WorkItem", "plan_work", "Manifest", "BatchSummary", "restore_batch"]
