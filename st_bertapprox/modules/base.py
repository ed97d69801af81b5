"""The modules' common base: :class:`ConfigAndWeights` (``save``/``load`` of a config plus a state_dict, written
atomically and verified on load: why not ST's own helpers is in ``.io``). It travels with a saved model as remote
code."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .checks import check_local_module_folder, hub_kwargs_of, require_file
from .io import load_config_file, load_tensors, save_code, save_json, save_tensors

if TYPE_CHECKING:
    from typing_extensions import Self


class ConfigAndWeights:
    """Mixin: ``save``/``load`` for a sentence-transformers module described by its config plus its state_dict."""

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        """Write the config (JSON), the state_dict (safetensors), both atomically, and this module's source file."""
        save_json(self.get_config_dict(), os.path.join(output_path, self.config_file_name))
        save_tensors(self.state_dict(), os.path.join(output_path, "model.safetensors"))
        save_code(self, output_path)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", **kwargs: Any) -> Self:
        """Build from the saved config and load the weights strictly, from a local folder or a Hub repo.

        Raises:
            FileNotFoundError: The config or the weights file is missing.
            ValueError: A folder an interrupted save left, a damaged file, or weights whose tensor names or shapes
                differ from what the config implies.
        """
        hub_kwargs = hub_kwargs_of(kwargs)
        check_local_module_folder(model_name_or_path, subfolder, cls.__name__)
        config_path = require_file(model_name_or_path, cls.config_file_name, cls.__name__, subfolder, **hub_kwargs)
        model = cls(**load_config_file(config_path))
        path = require_file(model_name_or_path, "model.safetensors", cls.__name__, subfolder, **hub_kwargs)
        state_dict = load_tensors(path)
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        found = {k: tuple(v.shape) for k, v in state_dict.items()}
        if found != expected:
            diff = sorted(k for k in expected.keys() | found.keys() if expected.get(k) != found.get(k))
            shown = [(k, found.get(k), expected.get(k)) for k in diff[:5]]
            raise ValueError(
                f"{path} does not match {config_path}: tensors {shown} "
                "(name, shape in the file, shape the config implies). The weights and the config come from different "
                "saves: save the model again."
            )
        model.load_state_dict(state_dict, strict=True)
        return model
