"""Just enough of Slicer's application side to import the module file `LiverTumorSeg/LiverTumorSeg.py`
headless and run its logic and its widget's run cycle on slicer-core's real MRML.

slicer-core has MRML, `slicer.util` and VTK but no Qt, no `slicer.app`, no `slicer.mrmlScene`, no
`ScriptedLoadableModule` and no `parameterNodeWrapper` (REFERENCE.md section 2). The fakes below stand
in for those only: a real `vtkMRMLScene` becomes `slicer.mrmlScene`, Qt is a `MagicMock`, message boxes
are recorded, and the parameter node wrapper keeps typed values in a real `vtkMRMLScriptedModuleNode`
the way Slicer's does (a missing parameter gets its default when the node is wrapped).
"""

from __future__ import annotations

import importlib.util
import sys
import types
import typing
from pathlib import Path
from unittest.mock import MagicMock

MODULE_FILE = Path(__file__).resolve().parents[1] / "LiverTumorSeg" / "LiverTumorSeg.py"


def _parameter_node_wrapper(cls):
    """Slicer's `parameterNodeWrapper`, reduced to what the module uses: str, float and bool values
    stored as node parameters, MRML nodes stored as node references."""
    hints = typing.get_type_hints(cls)
    defaults = {name: getattr(cls, name, None) for name in hints}

    def is_node_type(kind) -> bool:
        return isinstance(kind, type) and kind.__name__.startswith("vtkMRML")

    class Wrapper:
        def __init__(self, node):
            object.__setattr__(self, "parameterNode", node)
            for name, kind in hints.items():
                if not is_node_type(kind) and not node.GetParameter(name):
                    setattr(self, name, defaults[name])

        def __getattr__(self, name):
            if name not in hints:
                raise AttributeError(name)
            if is_node_type(hints[name]):
                return self.parameterNode.GetNodeReference(name)
            text = self.parameterNode.GetParameter(name)
            return text == "True" if hints[name] is bool else hints[name](text)

        def __setattr__(self, name, value):
            if name not in hints:
                raise AttributeError(f"{cls.__name__} has no parameter {name}")
            if is_node_type(hints[name]):
                self.parameterNode.SetNodeReferenceID(name, value.GetID() if value else None)
            else:
                self.parameterNode.SetParameter(name, str(hints[name](value)))

    Wrapper.__name__ = cls.__name__
    return Wrapper


class _ScriptedLoadableModuleLogic:
    """Slicer's base logic: one singleton parameter node per module in `slicer.mrmlScene`."""

    def __init__(self, parent=None):
        self.moduleName = type(self).__name__.removesuffix("Logic")

    def getParameterNode(self):
        import slicer

        node = slicer.mrmlScene.GetSingletonNode(self.moduleName, "vtkMRMLScriptedModuleNode")
        if node is None:
            node = slicer.mrmlScene.CreateNodeByClass("vtkMRMLScriptedModuleNode")
            node.UnRegister(None)
            node.SetSingletonTag(self.moduleName)
            node = slicer.mrmlScene.AddNode(node)
        return node


class _ScriptedLoadableModuleWidget:
    def __init__(self, parent=None):
        self.parent = parent


class _ScriptedLoadable:
    def __init__(self, parent=None):
        self.parent = parent


class Messages:
    """The message boxes the module showed, by kind."""

    def __init__(self):
        self.errors: list[str] = []
        self.warnings: list[str] = []


def import_module_headless(monkeypatch):
    """Install the fakes (undone by `monkeypatch` after the test) and import the module file.
    Returns (module, scene, messages)."""
    import slicer
    import slicer.util

    scene = slicer.vtkMRMLScene()
    messages = Messages()
    monkeypatch.setattr(slicer, "mrmlScene", scene, raising=False)
    monkeypatch.setattr(slicer, "app", types.SimpleNamespace(
        setOverrideCursor=lambda cursor: None, restoreOverrideCursor=lambda: None,
        testingEnabled=lambda: False), raising=False)
    monkeypatch.setattr(slicer.util, "errorDisplay",
                        lambda text, **kwargs: messages.errors.append(text))
    monkeypatch.setattr(slicer.util, "warningDisplay",
                        lambda text, **kwargs: messages.warnings.append(text))
    monkeypatch.setitem(sys.modules, "qt", MagicMock(name="qt"))

    scripted = types.ModuleType("slicer.ScriptedLoadableModule")
    scripted.ScriptedLoadableModule = _ScriptedLoadable
    scripted.ScriptedLoadableModuleTest = _ScriptedLoadable
    scripted.ScriptedLoadableModuleWidget = _ScriptedLoadableModuleWidget
    scripted.ScriptedLoadableModuleLogic = _ScriptedLoadableModuleLogic
    wrapper = types.ModuleType("slicer.parameterNodeWrapper")
    wrapper.parameterNodeWrapper = _parameter_node_wrapper
    wrapper.Choice = wrapper.WithinRange = lambda *args: None
    monkeypatch.setitem(sys.modules, "slicer.ScriptedLoadableModule", scripted)
    monkeypatch.setitem(sys.modules, "slicer.parameterNodeWrapper", wrapper)

    spec = importlib.util.spec_from_file_location("LiverTumorSeg", MODULE_FILE)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "LiverTumorSeg", module)
    spec.loader.exec_module(module)
    return module, scene, messages
