"""The desktop window (PySide6 + pyqtgraph): a view over the engine that owns no inference logic.

PySide6 is imported here first, so pyqtgraph binds to it even when another
Qt binding is installed beside it.
"""

import PySide6  # noqa: F401
