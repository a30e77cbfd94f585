"""Errors of the task layer (their own module: both `base` and `loaders` raise them)."""


class TaskError(Exception):
    """Base class of the errors raised by the task layer."""


class DatasetUnavailable(TaskError, FileNotFoundError):
    """A dataset split is neither on disk nor obtainable from the Hugging Face hub.

    The message is one line naming the local file to provide and the hub dataset, so a
    job can print it and stop instead of showing a traceback.
    """
