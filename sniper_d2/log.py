"""sniper_d2's log lines go where Detectron2's go.

Detectron2's ``default_setup`` (through ``setup_logger``) gives only the ``detectron2`` logger its
console and ``OUTPUT_DIR/log.txt`` handlers; records of the ``sniper_d2.*`` loggers (chip
statistics, mining stages, the training summary) would fall through to Python's root logger and be
lost at INFO level. Importing sniper_d2 installs :class:`Detectron2Handlers` on the ``sniper_d2``
logger, which hands its records to the ``detectron2`` logger's handlers, so any project that sets
up Detectron2's logging gets sniper_d2's lines too, rank filtering and formatting included.
"""
import logging

__all__ = ["Detectron2Handlers", "forward_to_detectron2_logger"]


class Detectron2Handlers(logging.Handler):
    """Emits each record through the handlers of the ``detectron2`` logger.

    Stands aside when the ``sniper_d2`` logger has handlers of its own (e.g. from
    ``setup_logger(name="sniper_d2")``), and skips Detectron2 handlers that are also on the root
    logger, so no line is printed twice. With no Detectron2 handlers
    and no root handlers, warnings and errors still reach stderr (``logging.lastResort``).
    """

    def emit(self, record: logging.LogRecord) -> None:
        own = logging.getLogger("sniper_d2").handlers
        if any(not isinstance(h, Detectron2Handlers) for h in own):
            return
        handlers = logging.getLogger("detectron2").handlers
        # a handler also on the root logger gets the record by propagation already
        reached = logging.getLogger().handlers if logging.getLogger("sniper_d2").propagate else ()
        for handler in handlers:
            if record.levelno >= handler.level and not any(handler is h for h in reached):
                handler.handle(record)
        if not handlers and not logging.getLogger().handlers and logging.lastResort is not None:
            if record.levelno >= logging.lastResort.level:
                logging.lastResort.handle(record)


def forward_to_detectron2_logger() -> None:
    """Install :class:`Detectron2Handlers` on the ``sniper_d2`` logger (once) and let its INFO
    records through when no level was set for it."""
    logger = logging.getLogger("sniper_d2")
    if not any(isinstance(h, Detectron2Handlers) for h in logger.handlers):
        logger.addHandler(Detectron2Handlers())
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
