"""Top-level import name of `st_bertapprox.modules.student` (see `st_bertapprox/modules/__init__.py`): importing the
package registers that module under this name, and the import system then returns it in place of this file."""

import st_bertapprox.modules  # noqa: F401
