"""Tasks and their data: the GLUE registry, file readers and the three data sources."""

from bert_emd.data.loading import DataOptions, expand_split, load_split, resolve_task, tokenize
from bert_emd.data.tasks import GLUE_TASKS, TaskSpec, get_task

__all__ = ["DataOptions", "GLUE_TASKS", "TaskSpec", "expand_split", "get_task", "load_split", "resolve_task",
           "tokenize"]
