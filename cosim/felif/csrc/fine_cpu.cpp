// Fused fine forward pass of BRUNO on the CPU: n_sub sub-steps of h for every neuron, with the within-step latch.
//
// Work is split into blocks of BLOCK neurons (OpenMP, dynamic schedule: latched blocks finish early). Inside a
// block the sub-steps are the outer loop and the neurons the inner, vectorised loop; state and coefficients sit
// in small aligned arrays in L1. The latch is a 0/1 mask, so the inner loop has no branches. Iterative
// integrators (felif_substep.h: start / iterate / finish) stop iterating once the whole block has converged, so a
// neuron's result depends on its block: they run the neurons in their order, all sub-steps in one go. Explicit
// ones (Euler) compute each lane from its own neuron only, which allows three savings with the same values:
//   - the neurons that do not move (frozen, or latched from the start: above V_thr) are copied;
//   - a lane whose state (V, P and their compensation terms) comes out of a sub-step exactly as it went in is at a
//     fixed point and would stay there: it stops (in trained tactile networks 40-65 % of the neurons sit at the
//     lower clip v_min with P = -P_s for whole coarse steps);
//   - the sub-steps run in chunks of growing length (CHUNK_FIRST, doubling), and after each chunk the lanes still
//     moving are packed into fewer blocks, so that stopped lanes no longer occupy vector slots.
#include <torch/extension.h>

#include <ATen/Parallel.h>
#include <omp.h>

#include <algorithm>
#include <string>
#include <vector>

#include "felif_substep.h"

namespace cosim {
namespace {

constexpr int BLOCK = 64;  // neurons per block: 4 AVX-512 float vectors, 8 double
constexpr int LATCH_CHECK = 16;  // sub-steps between checks whether a whole block has latched
constexpr int64_t CHUNK_FIRST = 16;  // explicit steps: sub-steps before the moving lanes are first re-packed
constexpr int64_t PARALLEL_MIN_WORK = 2000000;  // neuron-sub-steps (~4 ms on one core) before using threads

// Lane j of a block. SHARED: all neurons have the same coefficients (coef_len 1), read from lane 0 so that the
// compiler keeps them in broadcast registers instead of loading a vector per coefficient (Euler float32: +10 %).
template <bool SHARED, typename T>
COSIM_HD Lane<T> lane_of(const T (&c)[N_COEF][BLOCK], const T* cur, int j) {
  Lane<T> lane;
  for (int k = 0; k < N_COEF; ++k) lane.c[k] = c[k][SHARED ? 0 : j];
  lane.i_in = cur[j];
  return lane;
}

// Runs n_sub sub-steps of the neurons index[0 .. count-1] (count <= BLOCK) on their state v, p (V, C/m^2) and
// compensation terms v_carry, p_carry, all indexed by neuron and updated in place; moving[m] says afterwards
// whether neuron m may still move (not latched, not frozen, not at a fixed point). STOP_AT_FIXED_POINT only for
// explicit steps: for an iterative one a stopped lane would change its block's iteration count.
template <typename T, typename Step, bool SHARED>
void run_block(const Step& step, const int64_t* index, int64_t count, const T* i_in, const T* coef,
               int64_t coef_len, const bool* frozen, T* v_state, T* p_state, T* v_carry_state, T* p_carry_state,
               uint8_t* moving, T h, int64_t n_sub) {
  using State = typename Step::template State<T>;
  constexpr bool STOP_AT_FIXED_POINT = !Step::iterative;
  alignas(64) T c[N_COEF][BLOCK];
  alignas(64) T cur[BLOCK];
  alignas(64) T v[BLOCK];
  alignas(64) T p[BLOCK];
  alignas(64) T v_carry[BLOCK];  // compensation of the sums (float32), see advance(); 0 once a lane has latched
  alignas(64) T p_carry[BLOCK];
  alignas(64) T live[BLOCK];
  alignas(64) T phase[State::size][BLOCK];
  for (int j = 0; j < BLOCK; ++j) {
    // Lanes past the end repeat the last neuron so that their (discarded) arithmetic stays finite.
    const int64_t m = index[std::min<int64_t>(j, count - 1)];
    const int64_t cm = coef_len == 1 ? 0 : m;
    for (int k = 0; k < N_COEF; ++k) c[k][j] = coef[k * coef_len + cm];
    cur[j] = i_in[m];
    v[j] = v_state[m];
    p[j] = p_state[m];
    v_carry[j] = v_carry_state[m];
    p_carry[j] = p_carry_state[m];
    const bool active = j < count && !(frozen != nullptr && frozen[m]) && !(v[j] > c[V_THR][j]);
    live[j] = active ? T(1) : T(0);
  }
  const T tolerance = static_cast<T>(step.tolerance);
  for (int64_t s = 0; s < n_sub; ++s) {
    if (s % LATCH_CHECK == 0) {
      T any = 0;
      for (int j = 0; j < BLOCK; ++j) any += live[j];
      if (any == T(0)) break;
    }
    if constexpr (Step::iterative) {
#pragma omp simd
      for (int j = 0; j < BLOCK; ++j) {
        State st;
        step.start(v[j], p[j], lane_of<SHARED>(c, cur, j), h, st);
        for (int k = 0; k < State::size; ++k) phase[k][j] = st.x[k];
      }
      for (int it = 0; it < step.iterations; ++it) {
        T worst = 0;
#pragma omp simd reduction(max : worst)
        for (int j = 0; j < BLOCK; ++j) {
          State st;
          for (int k = 0; k < State::size; ++k) st.x[k] = phase[k][j];
          worst = max_of(worst, step.iterate(st, lane_of<SHARED>(c, cur, j), h) * live[j]);
          for (int k = 0; k < State::size; ++k) phase[k][j] = st.x[k];
        }
        if (worst <= tolerance) break;
      }
    }
#pragma omp simd
    for (int j = 0; j < BLOCK; ++j) {
      const Lane<T> lane = lane_of<SHARED>(c, cur, j);
      State st;
      if constexpr (Step::iterative) {
        for (int k = 0; k < State::size; ++k) st.x[k] = phase[k][j];
      } else {
        step.start(v[j], p[j], lane, h, st);
      }
      T dv, dp;
      step.finish(st, lane, dv, dp);
      T vn = v[j], pn = p[j], vc = v_carry[j], pc = p_carry[j];
      advance(vn, vc, pn, pc, dv, dp, lane);
      const bool is_live = live[j] != T(0);
      const bool fixed = STOP_AT_FIXED_POINT && vn == v[j] && pn == p[j] && vc == v_carry[j] && pc == p_carry[j];
      v[j] = is_live ? vn : v[j];
      p[j] = is_live ? pn : p[j];
      const bool still = is_live && !(v[j] > lane.c[V_THR]);
      v_carry[j] = still ? vc : T(0);
      p_carry[j] = still ? pc : T(0);
      live[j] = still && !fixed ? T(1) : T(0);
    }
  }
  for (int j = 0; j < count; ++j) {
    const int64_t m = index[j];
    v_state[m] = v[j];
    p_state[m] = p[j];
    v_carry_state[m] = v_carry[j];
    p_carry_state[m] = p_carry[j];
    moving[m] = live[j] != T(0);
  }
}

template <typename T, typename Step>
void run_all(const Step& step, const torch::Tensor& v, const torch::Tensor& p, const torch::Tensor& i_in,
             const torch::Tensor& coef, const torch::Tensor& frozen, torch::Tensor& v_out, torch::Tensor& p_out,
             double h, int64_t n_sub) {
  const int64_t total = v.numel();
  const T* ip = i_in.data_ptr<T>();
  const T* cp = coef.data_ptr<T>();
  const int64_t coef_len = coef.size(1);
  const bool* fp = frozen.numel() ? frozen.data_ptr<bool>() : nullptr;
  v_out.copy_(v);
  p_out.copy_(p);
  T* vo = v_out.data_ptr<T>();
  T* po = p_out.data_ptr<T>();
  std::vector<T> v_carry(total, T(0)), p_carry(total, T(0));
  std::vector<uint8_t> moving(total, 0);
  std::vector<int64_t> live;  // the neurons to run; the others keep their state
  live.reserve(total);
  for (int64_t m = 0; m < total; ++m) {
    const bool still = (fp != nullptr && fp[m]) || vo[m] > cp[V_THR * coef_len + (coef_len == 1 ? 0 : m)];
    if (Step::iterative || !still) live.push_back(m);
  }
  // Small jobs run on the calling thread: after a parallel region libgomp's workers spin-wait for the next one
  // (milliseconds), which on a loaded machine takes the core from the caller's own small torch ops. Decided once
  // per call: the chunks of one call share the threads.
  const bool parallel = static_cast<int64_t>(live.size()) * n_sub >= PARALLEL_MIN_WORK &&
                        at::get_num_threads() > 1 && static_cast<int64_t>(live.size()) > BLOCK;
  // Iterative steps: one chunk of all sub-steps, the blocks as given (a neuron's result depends on its block).
  int64_t chunk = Step::iterative ? n_sub : CHUNK_FIRST;
  for (int64_t done = 0; done < n_sub && !live.empty(); done += chunk, chunk *= 2) {
    const int64_t steps = std::min(chunk, n_sub - done);
    const int64_t n_live = static_cast<int64_t>(live.size());
    const int64_t n_blocks = (n_live + BLOCK - 1) / BLOCK;
    const int threads = parallel ? static_cast<int>(std::min<int64_t>(at::get_num_threads(), n_blocks)) : 1;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) if (threads > 1)
    for (int64_t b = 0; b < n_blocks; ++b) {
      const int64_t start = b * BLOCK;
      const auto block = coef_len == 1 ? run_block<T, Step, true> : run_block<T, Step, false>;
      block(step, live.data() + start, std::min<int64_t>(BLOCK, n_live - start), ip, cp, coef_len, fp, vo, po,
            v_carry.data(), p_carry.data(), moving.data(), static_cast<T>(h), steps);
    }
    live.erase(std::remove_if(live.begin(), live.end(), [&](int64_t m) { return !moving[m]; }), live.end());
  }
}

std::vector<torch::Tensor> fine_forward(const torch::Tensor& v, const torch::Tensor& p, const torch::Tensor& i_in,
                                        const torch::Tensor& coef, const torch::Tensor& frozen, double h,
                                        int64_t n_sub, const std::string& integrator, int64_t newton_iterations,
                                        double newton_tolerance, double switching_cutoff, double tiny) {
  TORCH_CHECK(v.device().is_cpu(), "fine_forward (CPU kernel): tensors must be on the CPU, got ", v.device());
  TORCH_CHECK(v.is_contiguous() && p.is_contiguous() && i_in.is_contiguous() && coef.is_contiguous(),
              "fine_forward: v, p, i_in and coef must be contiguous");
  TORCH_CHECK(p.scalar_type() == v.scalar_type() && i_in.scalar_type() == v.scalar_type() &&
                  coef.scalar_type() == v.scalar_type(),
              "fine_forward: v, p, i_in and coef must share one dtype");
  TORCH_CHECK(p.numel() == v.numel() && i_in.numel() == v.numel(), "fine_forward: v, p, i_in sizes differ");
  TORCH_CHECK(coef.dim() == 2 && coef.size(0) == N_COEF && (coef.size(1) == 1 || coef.size(1) == v.numel()),
              "fine_forward: coef must be [", static_cast<int>(N_COEF), ", 1 or numel(v)], got ", coef.sizes());
  TORCH_CHECK(frozen.numel() == 0 || (frozen.scalar_type() == torch::kBool && frozen.numel() == v.numel() &&
                                      frozen.is_contiguous()),
              "fine_forward: frozen must be empty or a contiguous bool tensor of numel(v)");
  TORCH_CHECK(n_sub >= 0, "fine_forward: n_sub must be >= 0");
  auto v_out = torch::empty_like(v);
  auto p_out = torch::empty_like(p);
  if (v.numel() == 0) return {v_out, p_out};
  const bool exponential = integrator == "exponential";
  TORCH_CHECK(exponential || integrator == "euler", "fine_forward: unknown integrator '", integrator, "'");
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "fine_forward", [&] {
    if (exponential)
      run_all<scalar_t>(ExponentialStep{static_cast<int>(newton_iterations), newton_tolerance, switching_cutoff, tiny},
                        v, p, i_in, coef, frozen, v_out, p_out, h, n_sub);
    else
      run_all<scalar_t>(EulerStep{}, v, p, i_in, coef, frozen, v_out, p_out, h, n_sub);
  });
  return {v_out, p_out};
}

std::vector<std::string> coefficient_names() { return std::vector<std::string>(COEF_NAMES, COEF_NAMES + N_COEF); }

}  // namespace
}  // namespace cosim

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("fine_forward", &cosim::fine_forward,
        "n_sub fine sub-steps of h (s) with latch at V_thr: (v, p, i_in, coef, frozen, h, n_sub, integrator, "
        "newton_iterations, newton_tolerance, switching_cutoff, tiny)");
  m.def("coefficient_names", &cosim::coefficient_names, "Rows of the coefficient matrix, in order");
}
