// One fine sub-step of one FeLIF neuron: the transcription of cosim/felif/physics.py (euler_step) and of
// cosim/felif/integrators.py (exponential_step) for the fused kernel. This is the only C++ copy of the equations;
// tests/felif/test_kernel.py checks it against the Python definitions.
//
// Written as branch-free scalar code on one lane so that
//   - on the CPU, GCC vectorises the loop over a block of neurons (libmvec expf/logf under -ffast-math);
//   - a CUDA kernel can include this header and call the same functions per thread (COSIM_HD).
#pragma once

#include <cmath>

#if defined(__CUDACC__)
#define COSIM_HD __host__ __device__ __forceinline__
#define COSIM_UNROLL _Pragma("unroll")
#else
#define COSIM_HD inline __attribute__((always_inline))
#define COSIM_UNROLL _Pragma("GCC unroll 16")  // a loop left inside the neuron loop stops GCC vectorising it
#endif

namespace cosim {

// Rows of the per-neuron coefficient matrix, derived from FeLIFParameters in cosim/felif/kernel.py.
// Units: SI, as in physics.py.
enum Coef : int {
  C_DIV,     // c_div, 1/m
  D_DIV,     // d_div, V m/C
  ALPHA,     // alpha
  LOG_EA,    // log(E_a / (V/m))
  E_GUARD,   // E_guard, V/m
  INV_TAU0,  // 1/tau0, 1/s
  P_S,       // P_s, C/m^2
  I0_AREA,   // I0*A, A
  INV_VT,    // 1/V_t, 1/V
  I_DSC,     // I_dsc, A
  AREA,      // A, m^2
  INV_CTOT,  // 1/C_tot, 1/F
  V_THR,     // V_thr, V
  N_COEF
};

// Names of the rows, in order, for the Python side.
static const char* const COEF_NAMES[N_COEF] = {"c_div",   "d_div",  "alpha", "log_ea", "e_guard",
                                               "inv_tau0", "p_s",    "i0_area", "inv_vt", "i_dsc",
                                               "area",     "inv_ctot", "v_thr"};

constexpr double V_CLIP = 5.0;  // physics.V_CLIP, V

// Largest argument of exp(-y) evaluated. Beyond the float32 range (y > 87) libmvec leaves the vector path for a
// slow scalar one; capping at 80 changes r(E) only where it is below exp(-80)/tau0 = 2e-22 1/s (no switching).
constexpr double EXP_NEG_MAX = 80.0;

// The coefficients of one neuron plus its input current (A).
template <typename T>
struct Lane {
  T c[N_COEF];
  T i_in;
};

template <typename T>
COSIM_HD T sign_of(T x) {
  return T(x > T(0)) - T(x < T(0));
}

template <typename T>
COSIM_HD T min_of(T a, T b) {
  return a < b ? a : b;
}

template <typename T>
COSIM_HD T max_of(T a, T b) {
  return a > b ? a : b;
}

template <typename T>
COSIM_HD T clamp_to(T x, T lo, T hi) {
  return min_of(max_of(x, lo), hi);
}

// r(|E|) and dr/dE = alpha x r sign(E) / (|E| + E_guard), x = (E_a/(|E| + E_guard))^alpha = exp(alpha log(...)).
template <typename T>
COSIM_HD void switching_rate(T e, const Lane<T>& n, T& rate, T& slope) {
  using std::exp;
  using std::fabs;
  using std::log;
  const T a = fabs(e) + n.c[E_GUARD];
  const T x = exp(n.c[ALPHA] * (n.c[LOG_EA] - log(a)));
  rate = exp(-min_of(x, T(EXP_NEG_MAX))) * n.c[INV_TAU0];
  slope = n.c[ALPHA] * x * rate * sign_of(e) / a;
}

// I_leak = (I0 A (exp(V/V_t) - 1) + I_dsc) sign(V), A.
template <typename T>
COSIM_HD T leakage_current(T v, const Lane<T>& n) {
  using std::exp;
  return (n.c[I0_AREA] * (exp(v * n.c[INV_VT]) - T(1)) + n.c[I_DSC]) * sign_of(v);
}

// physics.euler_step with step h (s).
struct EulerStep {
  template <typename T>
  COSIM_HD void apply(T& v, T& p, const Lane<T>& n, T h) const {
    const T e = n.c[C_DIV] * v - n.c[D_DIV] * p;
    T rate, unused_slope;  // the compiler drops the slope
    switching_rate(e, n, rate, unused_slope);
    const T dp = (sign_of(e) * n.c[P_S] - p) * rate;
    const T dv = (n.i_in - leakage_current(v, n) - n.c[AREA] * dp) * n.c[INV_CTOT];
    v = clamp_to(v + h * dv, T(-V_CLIP), T(V_CLIP));
    p = clamp_to(p + h * dp, -n.c[P_S], n.c[P_S]);
  }
};

// integrators.exponential_step with step h (s): P relaxes towards sign(E0) P_s at the end-of-step rate (Newton
// on t = log|dP| from the right of the root), V by charge balance. The constants come from integrators.py.
template <int Iterations>  // integrators.NEWTON_ITERATIONS[dtype], fixed at compile time so the loop unrolls
struct ExponentialStep {
  double switching_cutoff; // integrators.SWITCHING_CUTOFF
  double tiny;             // integrators.TINY

  template <typename T>
  COSIM_HD void apply(T& v, T& p, const Lane<T>& n, T h) const {
    using std::exp;
    using std::expm1;
    using std::fabs;
    using std::log;
    const T small = T(tiny);
    const T q = (n.i_in - leakage_current(v, n)) * h;
    const T e0 = n.c[C_DIV] * (v + q * n.c[INV_CTOT]) - n.c[D_DIV] * p;
    const T sign = sign_of(e0);
    const T span = fabs(sign * n.c[P_S] - p);
    const T a0 = fabs(e0);
    const T k = n.c[C_DIV] * n.c[AREA] * n.c[INV_CTOT] + n.c[D_DIV];
    T rate0, unused_slope;
    switching_rate(e0, n, rate0, unused_slope);
    const T u_explicit = -span * expm1(-min_of(h * rate0, T(EXP_NEG_MAX)));
    const T x_cut = log(h * n.c[INV_TAU0]) + T(switching_cutoff);
    const T a_cut = exp(n.c[LOG_EA] - log(x_cut) / n.c[ALPHA]);
    const T u_room = min_of(span, max_of(a0 - a_cut, T(0)) / k);
    const T t_start = log(max_of(min_of(u_room, u_explicit), small));
    const T log_span = log(max_of(span, small));
    T t = t_start;
    COSIM_UNROLL
    for (int it = 0; it < Iterations; ++it) {
      const T u = exp(t);
      const T a = a0 - k * u;
      T rate, rate_slope;
      switching_rate(a, n, rate, rate_slope);
      const T w = min_of(h * rate, T(EXP_NEG_MAX));  // beyond, exp(-w) = 0 to precision
      const T switched = max_of(-expm1(-w), small);
      const T g = t - log_span - log(switched);
      const T slope = T(1) + h * k * u * rate_slope * exp(-w) / switched;
      t = min_of(t - g / slope, t_start);
    }
    const T dp = sign * (u_room > T(0) ? exp(t) : u_explicit);
    p = clamp_to(p + dp, -n.c[P_S], n.c[P_S]);
    v = clamp_to(v + (q - n.c[AREA] * dp) * n.c[INV_CTOT], T(-V_CLIP), T(V_CLIP));
  }
};

}  // namespace cosim
