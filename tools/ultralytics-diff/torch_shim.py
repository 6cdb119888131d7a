"""A stand-in for `torch` (and `torchvision`), for the differential harness ONLY.

Ultralytics imports torch at package import time, and the PyPI torch wheel with its CUDA
dependencies is several GB. `verify_image_label`, `check_image`, `exif_size` and
`segments2boxes` run on NumPy arrays, Pillow and OpenCV only; torch is touched there solely
through `isinstance(x, torch.Tensor)`, which is False for NumPy arrays with this stand-in too.

`install()` puts a meta-path finder in front of the import system that answers every
`torch...` / `torchvision...` import with a permissive stub module. Nothing in Ultralytics is
patched or edited: the real `ultralytics.data.utils.verify_image_label` runs unmodified. Any
attempt to really compute with torch would get stub objects back, never real tensors; the
harness never does that.
"""

import importlib.abc
import importlib.machinery
import importlib.metadata
import sys
import types

FAKE_TORCH_VERSION = "2.15.0"  # the PyPI torch release current with the pinned Ultralytics
_ROOTS = ("torch", "torchvision")


class _StubMeta(type):
    """Class-level attribute access yields further stub classes (torch.nn.Module.x ...)."""

    def __getattr__(cls, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _stub_class(name)

    def __or__(cls, other):  # `torch.Tensor | np.ndarray` in annotations
        return cls

    __ror__ = __or__


class _Stub(metaclass=_StubMeta):
    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        # Used as a decorator (`@torch.no_grad()`, `@smart_inference_mode()`): keep the function.
        if len(args) == 1 and not kwargs and callable(args[0]):
            return args[0]
        return _Stub()

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _Stub()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __bool__(self):
        return False

    def __iter__(self):
        return iter(())

    def __int__(self):
        return 0

    def __index__(self):
        return 0

    def __float__(self):
        return 0.0

    def __lt__(self, other):
        return False

    __le__ = __gt__ = __ge__ = __lt__

    def __or__(self, other):
        return self

    __ror__ = __or__


def _stub_class(name):
    if name.endswith("Warning"):
        return _StubMeta(name, (Warning,), {})
    if name.endswith(("Error", "Exception")):
        return _StubMeta(name, (Exception,), {})
    return _StubMeta(name, (_Stub,), {})


class _StubModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        full = f"{self.__name__}.{name}"
        if full in sys.modules:
            return sys.modules[full]
        value = _stub_class(name)
        setattr(self, name, value)
        return value


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in _ROOTS:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def find_distributions(self, context=importlib.metadata.DistributionFinder.Context()):
        if context.name in _ROOTS:
            yield _StubDistribution(context.name)

    def create_module(self, spec):
        module = _StubModule(spec.name)
        module.__path__ = []
        module.__version__ = FAKE_TORCH_VERSION if spec.name == "torch" else "0.30.0"
        return module

    def exec_module(self, module):
        if module.__name__ == "torch":
            module.Tensor = _stub_class("Tensor")
            module.float32 = module.float16 = module.bfloat16 = _Stub()
        parent, _, child = module.__name__.rpartition(".")
        if parent and parent in sys.modules:
            setattr(sys.modules[parent], child, module)


class _StubDistribution(importlib.metadata.Distribution):
    """Package metadata for `importlib.metadata.version("torch")` and the like."""

    def __init__(self, name):
        self._name = name

    def read_text(self, filename):
        if filename == "METADATA":
            version = FAKE_TORCH_VERSION if self._name == "torch" else "0.30.0"
            return f"Metadata-Version: 2.1\nName: {self._name}\nVersion: {version}\n"
        return None

    def locate_file(self, path):
        return path


def install():
    """Answer torch/torchvision imports with stubs. Call before importing ultralytics."""
    for name in list(sys.modules):
        if name.split(".")[0] in _ROOTS:
            raise RuntimeError(f"{name} is already imported; the shim must come first")
    sys.meta_path.insert(0, _Finder())
