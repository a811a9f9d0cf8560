"""Fused fine forward pass of BRUNO: cfg.substeps sub-steps of cfg.h with the within-step latch, no autograd.

Backends:

- ``"cpp"`` (default): a C++ extension (``csrc/fine_cpu.cpp`` with the per-neuron equations in
  ``csrc/felif_substep.h``) compiled at first use with `torch.utils.cpp_extension.load`
  (``-O3 -ffast-math -fno-associative-math -march=native -fopenmp``), cached under ``$COSIM_CACHE/torch_ext``
  or ``~/.cache/cosim/torch_ext``. float32 (the state summed with Kahan compensation: as accurate as float64
  sums) and float64, OpenMP over blocks of neurons (torch.get_num_threads() threads) for jobs of at least 2M
  neuron-sub-steps, smaller ones on the calling thread. If it cannot be compiled, `fine_forward` raises
  `KernelBuildError` saying what to install.
- ``"torch"``: `integrators.fine_forward_reference`, vectorised over neurons with a Python loop over sub-steps:
  exact same scheme, two to three orders of magnitude slower (about 0.2 M neuron-sub-steps/s at 16 neurons).
  Chosen with ``COSIM_FINE_BACKEND=torch`` (or ``backend="torch"``), and used with a warning for tensors on a
  GPU until a CUDA kernel exists (it can include felif_substep.h and run start/iterate/finish per thread).
"""
from __future__ import annotations

import hashlib
import math
import os
import platform
import shutil
import warnings
from pathlib import Path
from types import ModuleType

import torch

from cosim.felif import integrators
from cosim.felif.integrators import fine_forward_reference, fine_step_function
from cosim.felif.physics import FeLIFParameters, FeLIFState
from cosim.felif.step import StepConfig

BACKENDS = ("cpp", "torch")
_CSRC = Path(__file__).with_name("csrc")
_extension: ModuleType | None = None


class KernelBuildError(RuntimeError):
    """The C++ fine kernel could not be compiled or loaded."""


def cache_dir() -> Path:
    """Build directory of the extension: per torch version, CPU (the code is built with -march=native) and kernel
    source (a hash of csrc/: a build of other sources is never loaded, whatever the files' modification times)."""
    root = Path(os.environ["COSIM_CACHE"]) if os.environ.get("COSIM_CACHE") else Path.home() / ".cache" / "cosim"
    cpu = platform.machine()
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
        cpu += "-" + hashlib.sha1(flags.encode()).hexdigest()[:10]
    except (OSError, StopIteration):
        pass
    source = hashlib.sha1(b"".join(path.read_bytes() for path in sorted(_CSRC.iterdir()))).hexdigest()[:10]
    return root / "torch_ext" / f"torch{torch.__version__}-{cpu}-src{source}"


def load_extension() -> ModuleType:
    """The compiled CPU kernel module (built on first call, then cached); KernelBuildError if that fails."""
    global _extension
    if _extension is not None:
        return _extension
    from torch.utils import cpp_extension

    import cosim

    if cosim.OMP_POLICY_TOO_LATE:
        warnings.warn("torch was imported before cosim and OMP_WAIT_POLICY is not set, so OpenMP threads spin "
                      "between the fused FeLIF kernel's parallel regions and starve the rest of training on a small "
                      "or shared machine (a tactile training epoch on 2 cores: about 140 s instead of 35 s). Import "
                      "cosim before torch, or run with OMP_WAIT_POLICY=PASSIVE in the environment", RuntimeWarning,
                      stacklevel=3)

    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        raise KernelBuildError(
            f"no C++ compiler {compiler!r} on PATH to build the fused FeLIF kernel: install g++ (apt-get install "
            "g++) or set COSIM_FINE_BACKEND=torch for the slow pure-torch fine loop"
        )
    build = cache_dir()
    build.mkdir(parents=True, exist_ok=True)
    try:
        _extension = cpp_extension.load(
            name="cosim_felif_fine",
            sources=[str(_CSRC / "fine_cpu.cpp")],
            extra_include_paths=[str(_CSRC)],
            # -fno-associative-math keeps the compensated float32 sums of felif_substep.h (add_clipped) intact.
            extra_cflags=["-O3", "-ffast-math", "-fno-associative-math", "-march=native", "-fopenmp"],
            # -ffast-math only at compile time: linking with it would flush denormals process-wide.
            extra_ldflags=["-fopenmp"],
            build_directory=str(build),
            verbose=False,
        )
    except Exception as err:  # compiler and loader errors come as several types; all mean the same to the user
        raise KernelBuildError(
            f"building the fused FeLIF kernel in {build} failed: {err}\nFix the compiler setup (g++, ninja) or set "
            "COSIM_FINE_BACKEND=torch for the slow pure-torch fine loop"
        ) from err
    return _extension


def coefficients(
    params: FeLIFParameters, shape: torch.Size, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """The kernel's per-neuron coefficient matrix [K, 1] (all parameters scalar) or [K, numel] (some per neuron).

    Derived in float64 before the cast. Rows follow the kernel's own list (felif_substep.h, enum Coef).
    """
    values = {
        "c_div": params.c_div,
        "d_div": params.d_div,
        "alpha": params.alpha,
        "log_ea": torch.log(params.e_a) if isinstance(params.e_a, torch.Tensor) else math.log(params.e_a),
        "e_guard": params.e_guard,
        "inv_tau0": 1.0 / params.tau0,
        "p_s": params.p_s,
        "i0_area": params.i0 * params.area,
        "inv_vt": 1.0 / params.v_t,
        "i_dsc": params.i_dsc,
        "area": params.area,
        "inv_ctot": 1.0 / params.c_tot,
        "v_thr": params.v_thr,
        "v_min": params.v_min,
        "v_max": params.v_max,
    }
    rows = [values[name] for name in load_extension().coefficient_names()]
    if not any(isinstance(r, torch.Tensor) for r in rows):
        return torch.tensor(rows, dtype=dtype, device=device).reshape(-1, 1)
    return torch.stack(
        [torch.as_tensor(r, dtype=torch.float64, device=device).to(dtype).expand(shape) for r in rows]
    ).reshape(len(rows), -1)


@torch.no_grad()
def fine_forward(
    state: FeLIFState,
    i_in: torch.Tensor,
    params: FeLIFParameters,
    cfg: StepConfig,
    frozen: torch.Tensor | None = None,
    backend: str | None = None,
) -> FeLIFState:
    """The fine state after cfg.substeps sub-steps of cfg.h (s) with input current i_in (A) held, no autograd.

    Within-step latch: once V > V_thr a neuron keeps its V and P to the end of the window (also if it starts
    above). Neurons where `frozen` is true are left as they are (BRUNO resets them anyway). cfg.integrator picks
    the scheme ("euler" or "exponential"). backend: "cpp" or "torch"; default $COSIM_FINE_BACKEND or "cpp".
    """
    backend = backend or os.environ.get("COSIM_FINE_BACKEND", "cpp")
    if backend not in BACKENDS:
        raise ValueError(f"unknown fine backend {backend!r} (from COSIM_FINE_BACKEND?); choose one of {BACKENDS}")
    fine_step_function(cfg.integrator)  # clear error for an unknown integrator name
    v, p, i_in = torch.broadcast_tensors(state.v, state.p, i_in.to(state.v.dtype))
    if backend == "cpp" and v.device.type != "cpu":
        warnings.warn(f"no fused FeLIF kernel for {v.device.type} yet: using the slow torch fine loop", RuntimeWarning,
                      stacklevel=2)
        backend = "torch"
    if backend == "torch":
        warnings.warn("FeLIF fine forward on the pure-torch loop (COSIM_FINE_BACKEND=torch): 100-1000x slower than "
                      "the fused kernel", RuntimeWarning, stacklevel=2)
        return fine_forward_reference(FeLIFState(v, p), i_in, params, cfg, frozen)
    if v.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"the fused FeLIF kernel runs float32 or float64 state, got {v.dtype}")
    mask = torch.empty(0, dtype=torch.bool)
    if frozen is not None:
        mask = frozen.to(torch.bool).expand(v.shape).contiguous()
    v_out, p_out = load_extension().fine_forward(
        v.contiguous(),
        p.contiguous(),
        i_in.contiguous(),
        coefficients(params, v.shape, v.dtype, v.device),
        mask,
        cfg.h,
        cfg.substeps,
        cfg.integrator,
        integrators.NEWTON_ITERATIONS[v.dtype],
        integrators.NEWTON_TOLERANCE[v.dtype],
        integrators.SWITCHING_CUTOFF,
        integrators.TINY,
    )
    return FeLIFState(v_out, p_out)
