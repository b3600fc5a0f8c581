"""The window's controllers, each owning one concern and its widgets, over the shared context.

`CONTROLLERS` is the order they are built in, which is the order their toolbar items appear and the
order they hear `session_changed` (the view prepares the session before the indexer starts).
"""

from __future__ import annotations

from .base import Controller, WindowContext
from .compare import CompareController
from .decisions import DecisionController
from .evaluate import EvaluateController
from .folder import FolderController
from .handoff import HandoffController
from .indexing import IndexingController
from .live import LiveDecisionsController
from .loupe import LoupeController
from .moves import MovesController
from .prompts import PromptController
from .search import SearchController
from .stacks import StacksController
from .taste import TasteController
from .view import ViewController

CONTROLLERS: tuple[type[Controller], ...] = (
    FolderController,
    ViewController,
    DecisionController,
    LoupeController,
    CompareController,
    PromptController,
    StacksController,
    IndexingController,
    HandoffController,
    MovesController,
    EvaluateController,
    TasteController,
    LiveDecisionsController,
    SearchController,  # last: the search box at the toolbar's right end
)

__all__ = [
    "CONTROLLERS",
    "CompareController",
    "Controller",
    "DecisionController",
    "EvaluateController",
    "FolderController",
    "HandoffController",
    "IndexingController",
    "LiveDecisionsController",
    "LoupeController",
    "MovesController",
    "PromptController",
    "SearchController",
    "StacksController",
    "TasteController",
    "ViewController",
    "WindowContext",
]
