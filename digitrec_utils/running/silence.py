"""A papermill engine whose cell timeout counts silence: a cell is stopped once it has printed nothing for so long.

nbclient's ``timeout`` counts from the start of a cell, so a training cell that prints an epoch every
minute is killed as if it hung once its epochs add up to the timeout. A hung kernel prints nothing; a slow
cell prints its progress. Here the timeout counts from the cell's last message (its start, a printed line,
a figure): nbclient is asked to wake every :data:`CHECK_SECONDS` at most, and at each wake the cell goes on
unless it has been silent for the whole limit. Only then does nbclient's own timeout handling stop it
(:class:`nbclient.exceptions.CellTimeoutError`, with the limit as its timeout).

nbclient has no option for this, so its client is subclassed (papermill's documented way to change how
notebooks execute is an engine of one's own, registered under :data:`ENGINE_NAME`). The subclass overrides
two methods: ``async_execute_cell`` (public) to start each cell's clock, ``process_message`` (public) to
restart it on each message, and ``_async_handle_timeout`` (nbclient's private hook, present since
nbclient 0.5) to decide at each wake whether the cell is silent or only slow.
"""

from __future__ import annotations

import asyncio
import functools
from time import monotonic

from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, papermill_engines
from papermill.log import logger
from papermill.utils import remove_args

# The most seconds between two checks of a running cell's silence.
CHECK_SECONDS = 30.0
# The name under which papermill finds the engine.
ENGINE_NAME = "digitrec-silence"


class SilenceTimeoutClient(PapermillNotebookClient):
    """papermill's client, whose ``timeout`` is the longest a cell may go without a message."""

    def __init__(self, nb_man, **kwargs):
        super().__init__(nb_man, **kwargs)
        self.silence_limit = self.timeout if self.timeout and self.timeout > 0 else None
        self.last_message = self.last_check = monotonic()
        if self.silence_limit is not None:
            check = max(1.0, min(float(self.silence_limit), CHECK_SECONDS))
            self.timeout_func = lambda cell: check

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        self.last_message = self.last_check = monotonic()
        return await super().async_execute_cell(cell, cell_index, execution_count=execution_count,
                                                store_history=store_history)

    def process_message(self, msg, cell, cell_index):
        self.last_message = monotonic()
        return super().process_message(msg, cell, cell_index)

    async def _async_handle_timeout(self, timeout, cell=None):
        now = monotonic()
        if self.silence_limit is not None and now - self.last_message >= self.silence_limit:
            return await super()._async_handle_timeout(self.silence_limit, cell)
        # Only slow: go on waiting for the reply. Where nbclient's own deadline has passed it asks again at
        # once, so a check that comes sooner than ``timeout`` after the last one waits out the rest.
        since_check, self.last_check = now - self.last_check, now
        if since_check < timeout:
            await asyncio.sleep(timeout - since_check)
        return None


class SilenceTimeoutEngine(NBClientEngine):
    """papermill's nbclient engine with :class:`SilenceTimeoutClient`."""

    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None,
                                 stderr_file=None, start_timeout=60, execution_timeout=None, **kwargs):
        kwargs = remove_args(["input_path", "timeout", "startup_timeout"], **kwargs)
        client = SilenceTimeoutClient(nb_man, timeout=execution_timeout, startup_timeout=start_timeout,
                                      kernel_name=kernel_name, log=logger, log_output=log_output,
                                      stdout_file=stdout_file, stderr_file=stderr_file, **kwargs)
        return client.execute()


@functools.cache
def register_engine() -> str:
    """Register the engine with papermill (once) and return its name, for ``execute_notebook(engine_name=...)``."""
    papermill_engines.register(ENGINE_NAME, SilenceTimeoutEngine)
    return ENGINE_NAME
