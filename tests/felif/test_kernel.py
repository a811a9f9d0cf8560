"""The fused fine kernel (C++) against the float64 torch reference built from physics.euler_step."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cosim.felif import kernel, physics
from cosim.felif.integrators import fine_forward_reference
from cosim.felif.physics import FeLIFParameters, FeLIFState, initial_state
from cosim.felif.step import StepConfig

PARAMS = FeLIFParameters()
CFG = StepConfig()


def trajectory(currents: torch.Tensor, dtype: torch.dtype, backend: str, cfg: StepConfig = CFG,
               params: FeLIFParameters = PARAMS) -> tuple[torch.Tensor, torch.Tensor]:
    """V and P after each coarse step (fine forward, then the reset after a spike), as float64 [T, n]."""
    state = initial_state(currents.shape[1:], params, dtype)
    spiked = torch.zeros(currents.shape[1:], dtype=torch.bool)
    vs, ps = [], []
    for i_k in currents:
        fine = kernel.fine_forward(state, i_k.to(dtype), params, cfg, frozen=spiked, backend=backend)
        state = physics.reset_state(fine, spiked, params)
        spiked = state.v > params.v_thr
        vs.append(state.v)
        ps.append(state.p)
    return torch.stack(vs).double(), torch.stack(ps).double()


@pytest.fixture(scope="module")
def reference_run() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """100 coarse steps of random 0..12 nA inputs on 16 neurons, float64 torch reference (about 5 s)."""
    generator = torch.Generator().manual_seed(1234)
    currents = torch.rand(100, 16, generator=generator, dtype=torch.float64) * 12e-9
    with pytest.warns(RuntimeWarning, match="pure-torch"):
        v, p = trajectory(currents, torch.float64, "torch")
    return currents, v, p


def test_float32_kernel_matches_float64_reference(reference_run):
    currents, v_ref, p_ref = reference_run
    assert 100 < int((v_ref > PARAMS.v_thr).sum()) < 1000, "the inputs should make the neurons spike now and then"
    v, p = trajectory(currents, torch.float32, "cpp")
    assert (v - v_ref).abs().max() < 1e-4
    assert (p - p_ref).abs().max() < 1e-6


def test_float64_kernel_matches_float64_reference(reference_run):
    currents, v_ref, p_ref = reference_run
    v, p = trajectory(currents, torch.float64, "cpp")
    assert (v - v_ref).abs().max() < 1e-9
    assert (p - p_ref).abs().max() < 1e-11


def test_float32_state_sums_are_compensated():
    """1000 sub-steps of one call, float32 kernel vs the float64 reference on the same (float32) start and inputs.

    Measured on GCC 12, AVX-512: max |dV| 1.1e-6 V, |dP| 2.7e-8 C/m^2 with the compensated float32 sums (the former
    float64 accumulators: 1.5e-6, 2.9e-8); with the compensation folded away (-ffast-math without
    -fno-associative-math: plain float32 sums) 1.4e-5 V, 3.4e-6 C/m^2, which this test rejects.
    """
    n = 64
    state = initial_state((n,), PARAMS, torch.float32)
    currents = torch.linspace(0.0, 10e-9, n)  # none crosses V_thr within the window (10 nA: 1.24 ms)
    out = kernel.fine_forward(state, currents, PARAMS, CFG)
    ref = fine_forward_reference(FeLIFState(state.v.double(), state.p.double()), currents.double(), PARAMS, CFG)
    assert CFG.substeps == 1000 and not bool((ref.v > PARAMS.v_thr).any())
    assert (out.v.double() - ref.v).abs().max() < 3e-6
    assert (out.p.double() - ref.p).abs().max() < 1e-7


def test_float32_clips_hold():
    """-300 nA drives V into the lower clip; from P = +0.2 at -5 V, Euler's switching overshoots P into the clip
    at -P_s and V into the upper clip (where it latches). The clipped values are exact."""
    state = FeLIFState(torch.tensor([0.0, -5.0]), torch.tensor([-0.22, 0.2]))
    out = kernel.fine_forward(state, torch.full((2,), -300e-9), PARAMS, CFG)
    limits = torch.tensor([PARAMS.v_min, PARAMS.v_max, -PARAMS.p_s])
    assert out.v.tolist() == limits[:2].tolist()
    assert out.p.tolist() == limits[[2, 2]].tolist()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_first_threshold_crossing_times(dtype):
    """REFERENCE.md: first crossing at 12.562, 6.244, 2.484, 1.237, 0.244 ms for 1, 2, 5, 10, 50 nA."""
    currents = torch.tensor([1e-9, 2e-9, 5e-9, 10e-9, 50e-9], dtype=dtype)
    state = initial_state(currents.shape, PARAMS, dtype)
    one_substep = StepConfig(dt=1e-6, h=1e-6)
    crossing = torch.full(currents.shape, -1)
    for k in range(1, 12_600):
        state = kernel.fine_forward(state, currents, PARAMS, one_substep)
        crossing = torch.where((crossing < 0) & (state.v > PARAMS.v_thr), k, crossing)
    assert crossing.tolist() == [12562, 6244, 2484, 1237, 244]


def test_spiking_coarse_steps():
    """REFERENCE.md: spiking coarse steps 1 nA -> 12, 27; 5 nA -> 2, 6, 10, 14...; 10 nA -> 1, 4, 7...;
    50 nA -> 0, 2."""
    currents = torch.tensor([1e-9, 5e-9, 10e-9, 50e-9]).expand(30, 4)
    v, _ = trajectory(currents, torch.float32, "cpp")
    steps = [torch.nonzero(v[:, j] > PARAMS.v_thr).flatten().tolist() for j in range(4)]
    assert steps[0] == [12, 27]
    assert steps[1] == list(range(2, 30, 4))
    assert steps[2] == list(range(1, 30, 3))
    assert steps[3] == list(range(0, 30, 2))


def test_per_neuron_parameters_match_one_neuron_at_a_time():
    """Per-neuron parameter tensors ([n], broadcast over the batch) give each neuron its own device."""
    n = 5
    area = torch.linspace(20e-12, 30e-12, n, dtype=torch.float64)
    e_a = torch.linspace(1.2e9, 1.35e9, n, dtype=torch.float64)
    params = PARAMS.replace(area=area, e_a=e_a)
    state = initial_state((3, n), params, torch.float64)
    currents = torch.tensor([[2e-9], [5e-9], [9e-9]], dtype=torch.float64).expand(3, n)
    together = kernel.fine_forward(state, currents, params, CFG)
    for j in range(n):
        alone = kernel.fine_forward(
            FeLIFState(state.v[:, j], state.p[:, j]), currents[:, j], PARAMS.replace(area=float(area[j]),
                                                                                       e_a=float(e_a[j])), CFG
        )
        torch.testing.assert_close(together.v[:, j], alone.v, rtol=0, atol=1e-12)
        torch.testing.assert_close(together.p[:, j], alone.p, rtol=0, atol=1e-14)
    assert together.v.std(dim=1).min() > 1e-3, "the neurons should differ"


def test_latch_holds_and_frozen_neurons_stay():
    state = FeLIFState(torch.tensor([3.0, 0.0, 0.0, 0.0]), torch.tensor([0.1, -0.22, -0.22, -0.22]))
    currents = torch.tensor([5e-9, 50e-9, 50e-9, 0.0])
    frozen = torch.tensor([False, False, True, False])
    out = kernel.fine_forward(state, currents, PARAMS, CFG, frozen=frozen)
    assert out.v[0] == 3.0 and out.p[0] == pytest.approx(0.1), "a neuron above threshold stays latched"
    assert 2.5 < float(out.v[1]) < 2.6, "50 nA crosses within the window and latches just above threshold"
    assert out.v[2] == 0.0 and out.p[2] == pytest.approx(-0.22), "frozen neurons are not integrated"
    assert abs(float(out.v[3])) < 1e-2, "no input: V stays within mV of 0 (slow switching, I_dsc)"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fixed_points_stop_and_neighbours_do_not_matter(dtype):
    """Euler: a neuron at a fixed point (V at the lower clip, P = -P_s, input pushing down) stops, and the lanes
    packed around a neuron (in its first block, or re-packed after a chunk) do not change its result by one bit."""
    generator = torch.Generator().manual_seed(7)
    n = 300
    pinned = torch.rand(n, generator=generator) < 0.5
    falling = ~pinned & (torch.rand(n, generator=generator) < 0.3)  # reaches the clip within the window
    v = torch.where(pinned, PARAMS.v_min, torch.rand(n, generator=generator, dtype=torch.float64) * 2 - 1)
    p = torch.where(pinned, -PARAMS.p_s, torch.rand(n, generator=generator, dtype=torch.float64) * 0.4 - 0.2)
    current = torch.rand(n, generator=generator, dtype=torch.float64) * 4e-9 - 1e-9
    current = torch.where(pinned | falling, -60e-9, current)
    state = FeLIFState(v.to(dtype), p.to(dtype))
    out = kernel.fine_forward(state, current.to(dtype), PARAMS, CFG)
    assert torch.equal(out.v[pinned], state.v[pinned]) and torch.equal(out.p[pinned], state.p[pinned])
    clipped = falling & (out.v == state.v.new_tensor(PARAMS.v_min))
    assert int(clipped.sum()) >= 40, "most of the falling ones reach the clip within the window and stop there"
    moving = ~pinned
    alone = kernel.fine_forward(FeLIFState(state.v[moving], state.p[moving]), current[moving].to(dtype), PARAMS, CFG)
    order = torch.randperm(n, generator=generator)
    shuffled = kernel.fine_forward(FeLIFState(state.v[order], state.p[order]), current[order].to(dtype), PARAMS, CFG)
    for got, want in ((alone.v, out.v[moving]), (alone.p, out.p[moving]), (shuffled.v, out.v[order]),
                      (shuffled.p, out.p[order])):
        assert torch.equal(got.view(torch.int64 if dtype == torch.float64 else torch.int32),
                           want.view(torch.int64 if dtype == torch.float64 else torch.int32))
    ref = fine_forward_reference(FeLIFState(v, p), current, PARAMS, CFG)
    torch.testing.assert_close(out.v.double(), ref.v, rtol=0, atol=2e-5)
    torch.testing.assert_close(out.p.double(), ref.p, rtol=0, atol=1e-6)
    # input balancing the discharge current: V moves by less than its rounding step per sub-step, so only the
    # compensation terms change at first; such a neuron is not at a fixed point and drifts over the window
    slow = FeLIFState(torch.linspace(0.2, 0.3, 70, dtype=dtype), torch.full((70,), PARAMS.p_s, dtype=dtype))
    out = kernel.fine_forward(slow, torch.full((70,), PARAMS.i_dsc, dtype=dtype), PARAMS, CFG)
    ref = fine_forward_reference(FeLIFState(slow.v.double(), slow.p.double()),
                                 torch.full((70,), PARAMS.i_dsc, dtype=torch.float64), PARAMS, CFG)
    assert bool((ref.v < slow.v.double() - 1e-6).all()), "the leakage pulls V down by 2-7 uV during the window"
    torch.testing.assert_close(out.v.double(), ref.v, rtol=0, atol=2e-7)


def test_empty_and_odd_sizes():
    """Sizes that are not a multiple of the kernel's block of 64, and no neurons at all."""
    for n in (0, 1, 63, 65, 130):
        state = initial_state((n,), PARAMS)
        currents = torch.full((n,), 3e-9)
        out = kernel.fine_forward(state, currents, PARAMS, CFG)
        ref = fine_forward_reference(state, currents, PARAMS, CFG)
        assert out.v.shape == (n,)
        torch.testing.assert_close(out.v, ref.v, rtol=0, atol=1e-4)


def test_backend_choice_and_errors(monkeypatch):
    state = initial_state((4,), PARAMS, torch.float64)
    currents = torch.full((4,), 3e-9, dtype=torch.float64)
    monkeypatch.setenv("COSIM_FINE_BACKEND", "torch")
    with pytest.warns(RuntimeWarning, match="pure-torch"):
        slow = kernel.fine_forward(state, currents, PARAMS, CFG)
    monkeypatch.setenv("COSIM_FINE_BACKEND", "cuda-please")
    with pytest.raises(ValueError, match="unknown fine backend"):
        kernel.fine_forward(state, currents, PARAMS, CFG)
    monkeypatch.delenv("COSIM_FINE_BACKEND")
    fast = kernel.fine_forward(state, currents, PARAMS, CFG)
    torch.testing.assert_close(fast.v, slow.v, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="unknown fine integrator"):
        kernel.fine_forward(state, currents, PARAMS, StepConfig(integrator="rk4"))
    with pytest.raises(TypeError, match="float32 or float64"):
        kernel.fine_forward(initial_state((4,), PARAMS, torch.float16), currents, PARAMS, CFG)


def test_missing_compiler_gives_an_actionable_error(monkeypatch):
    """With no compiler and nothing built yet in this process, the error says what to install."""
    monkeypatch.setattr(kernel, "_extension", None)
    monkeypatch.setenv("CXX", "no-such-compiler-cosim")
    with pytest.raises(kernel.KernelBuildError, match="COSIM_FINE_BACKEND=torch"):
        kernel.load_extension()


def test_cache_dir_follows_cosim_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("COSIM_CACHE", str(tmp_path))
    assert kernel.cache_dir().parent == tmp_path / "torch_ext"
    monkeypatch.delenv("COSIM_CACHE")
    assert kernel.cache_dir().parent == Path.home() / ".cache" / "cosim" / "torch_ext"


def test_cache_dir_changes_with_the_kernel_source(monkeypatch, tmp_path):
    """A build of other kernel sources is never loaded, even where the files' times would not show the change."""
    for path in kernel._CSRC.iterdir():
        (tmp_path / path.name).write_bytes(path.read_bytes())
    before = kernel.cache_dir()
    monkeypatch.setattr(kernel, "_CSRC", tmp_path)
    assert kernel.cache_dir() == before
    header = tmp_path / "felif_substep.h"
    header.write_text(header.read_text().replace("EXP_NEG_MAX = 80.0", "EXP_NEG_MAX = 70.0"))
    assert kernel.cache_dir() != before
