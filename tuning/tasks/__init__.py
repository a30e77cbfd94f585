"""Task, dataset and metric layer: the paper's benchmarks cast as text-to-text.

    from tuning.tasks import get_task
    task = get_task("rte")
    dev = task.load("validation")                 # list[Example]
    task.score(predictions, dev)                  # {"accuracy": ...}

Data location: `data_dir()` -> argument, else $PROMPT_TUNING_DATA, else
<project root>/../shared/data, holding the original formats (see loaders.py). A split
with no local file is fetched from the Hugging Face hub unless HF_DATASETS_OFFLINE=1 or
HF_HUB_OFFLINE=1; if that is impossible, DatasetUnavailable names what to provide.
"""

from . import metrics
from .base import DATA_ENV, DatasetUnavailable, Example, Task, TaskError, data_dir
from .registry import PARAPHRASE_LABEL_MAP, TASKS, get_task

__all__ = [
    "DATA_ENV",
    "DatasetUnavailable",
    "Example",
    "PARAPHRASE_LABEL_MAP",
    "TASKS",
    "Task",
    "TaskError",
    "data_dir",
    "get_task",
    "metrics",
]
