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
#else
#define COSIM_HD inline __attribute__((always_inline))
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
  V_MIN,     // v_min, V (lower clip of V)
  V_MAX,     // v_max, V (upper clip of V)
  N_COEF
};

// Names of the rows, in order, for the Python side.
static const char* const COEF_NAMES[N_COEF] = {"c_div",   "d_div",  "alpha", "log_ea", "e_guard",
                                               "inv_tau0", "p_s",    "i0_area", "inv_vt", "i_dsc",
                                               "area",     "inv_ctot", "v_thr",  "v_min", "v_max"};

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

// A sub-step runs in three phases so that an iterative integrator can stop once every neuron of a block (CPU) or
// each thread (GPU) has converged: start(v, p, lane, h, s); up to `iterations` times iterate(s, lane, h), which
// returns the size of its correction (stop when all are <= tolerance); finish(s, lane, dv, dp) gives the
// increments of V (V) and P (C/m^2) before the clips. State is a small array of T, stored per neuron in between.
// A step with `iterative` false does start and finish in one pass (GCC vectorises the fused loop best).
template <typename T, int K>
struct PhaseState {
  static constexpr int size = K;
  T x[K];
};

// physics.euler_step with step h (s): explicit, no iterations.
struct EulerStep {
  static constexpr bool iterative = false;
  int iterations = 0;
  double tolerance = 0.0;

  template <typename T>
  using State = PhaseState<T, 2>;  // dv, dp

  template <typename T>
  COSIM_HD void start(T v, T p, const Lane<T>& n, T h, State<T>& s) const {
    const T e = n.c[C_DIV] * v - n.c[D_DIV] * p;
    T rate, unused_slope;  // the compiler drops the slope
    switching_rate(e, n, rate, unused_slope);
    const T p_rate = (sign_of(e) * n.c[P_S] - p) * rate;
    s.x[0] = h * (n.i_in - leakage_current(v, n) - n.c[AREA] * p_rate) * n.c[INV_CTOT];
    s.x[1] = h * p_rate;
  }

  template <typename T>
  COSIM_HD T iterate(State<T>&, const Lane<T>&, T) const {
    return T(0);
  }

  template <typename T>
  COSIM_HD void finish(const State<T>& s, const Lane<T>&, T& dv, T& dp) const {
    dv = s.x[0];
    dp = s.x[1];
  }
};

// integrators.exponential_step with step h (s): P relaxes towards sign(E0) P_s at the end-of-step rate, found by
// Newton on t = log|dP| from the right of the root; V by charge balance. The constants come from integrators.py.
struct ExponentialStep {
  static constexpr bool iterative = true;
  int iterations;           // integrators.NEWTON_ITERATIONS[dtype]
  double tolerance;         // integrators.NEWTON_TOLERANCE[dtype], on the Newton step in t
  double switching_cutoff;  // integrators.SWITCHING_CUTOFF
  double tiny;              // integrators.TINY

  enum { T_NOW, T_START, LOG_SPAN, A0, Q, SIGN, U_ROOM, U_EXPLICIT, SIZE };
  template <typename T>
  using State = PhaseState<T, SIZE>;

  template <typename T>
  COSIM_HD static T field_per_switch(const Lane<T>& n) {  // k: field drop per unit |dP| via charge balance
    return n.c[C_DIV] * n.c[AREA] * n.c[INV_CTOT] + n.c[D_DIV];
  }

  template <typename T>
  COSIM_HD void start(T v, T p, const Lane<T>& n, T h, State<T>& s) const {
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
    T rate0, unused_slope;
    switching_rate(e0, n, rate0, unused_slope);
    const T u_explicit = -span * expm1(-min_of(h * rate0, T(EXP_NEG_MAX)));
    const T x_cut = log(h * n.c[INV_TAU0]) + T(switching_cutoff);
    const T a_cut = exp(n.c[LOG_EA] - log(x_cut) / n.c[ALPHA]);
    const T u_room = min_of(span, max_of(a0 - a_cut, T(0)) / field_per_switch(n));
    const T t_start = log(max_of(min_of(u_room, u_explicit), small));
    s.x[T_NOW] = t_start;
    s.x[T_START] = t_start;
    s.x[LOG_SPAN] = log(max_of(span, small));
    s.x[A0] = a0;
    s.x[Q] = q;
    s.x[SIGN] = sign;
    s.x[U_ROOM] = u_room;
    s.x[U_EXPLICIT] = u_explicit;
  }

  template <typename T>
  COSIM_HD T iterate(State<T>& s, const Lane<T>& n, T h) const {
    using std::exp;
    using std::expm1;
    using std::fabs;
    using std::log;
    const T small = T(tiny);
    const T k = field_per_switch(n);
    const T t = s.x[T_NOW];
    const T u = exp(t);
    const T a = s.x[A0] - k * u;
    T rate, rate_slope;
    switching_rate(a, n, rate, rate_slope);
    const T w = min_of(h * rate, T(EXP_NEG_MAX));  // beyond, exp(-w) = 0 to precision
    const T switched = max_of(-expm1(-w), small);
    const T g = t - s.x[LOG_SPAN] - log(switched);
    const T slope = T(1) + h * k * u * rate_slope * exp(-w) / switched;
    const T t_next = min_of(t - g / slope, s.x[T_START]);
    s.x[T_NOW] = t_next;
    return s.x[U_ROOM] > T(0) ? fabs(t_next - t) : T(0);
  }

  template <typename T>
  COSIM_HD void finish(const State<T>& s, const Lane<T>& n, T& dv, T& dp) const {
    using std::exp;
    dp = s.x[SIGN] * (s.x[U_ROOM] > T(0) ? exp(s.x[T_NOW]) : s.x[U_EXPLICIT]);
    dv = (s.x[Q] - n.c[AREA] * dp) * n.c[INV_CTOT];
  }
};

// Whether a run in T sums its state with compensation. A thousand float32 sub-steps summed in plain float32 drift
// from float64 by up to 1.4e-5 V and 3.4e-6 C/m^2; compensated, 1.5e-6 V and 2.9e-8 C/m^2, as float64 sums of the
// float32 increments did (tests/felif/test_kernel.py). float64 needs none.
template <typename T>
constexpr bool COMPENSATED = sizeof(T) < sizeof(double);

// The compensation of add_clipped, ((x + y) - x) - y, needs the additions in the order written: under
// -fassociative-math (part of -ffast-math) GCC folds it to 0. cosim/felif/kernel.py builds with
// -fno-associative-math, which costs the kernel nothing measurable; tests/felif/test_kernel.py checks that the
// compensation survives.
#if defined(__ASSOCIATIVE_MATH__)
#error "felif_substep.h: add -fno-associative-math after -ffast-math, or the float32 state sums lose their compensation"
#endif

// x += dx in T, then clipped to [lo, hi]. If COMPENSATED<T>, Kahan summation: `carry` holds the rounding error of
// the earlier additions, taken off the next increment; a clipped value is exact, so its carry is reset.
template <typename T>
COSIM_HD void add_clipped(T& x, T& carry, T dx, T lo, T hi) {
  T sum;
  if constexpr (COMPENSATED<T>) {
    const T y = dx - carry;
    sum = x + y;
    carry = (sum - x) - y;
  } else {
    sum = x + dx;
  }
  x = clamp_to(sum, lo, hi);
  if constexpr (COMPENSATED<T>) carry = x == sum ? carry : T(0);
}

// Applies the increments with the clips of physics.euler_step: V to [v_min, v_max], P to [-P_s, P_s]. v_carry and
// p_carry: the compensation terms of add_clipped, 0 at the start of a run.
template <typename T>
COSIM_HD void advance(T& v, T& v_carry, T& p, T& p_carry, T dv, T dp, const Lane<T>& n) {
  add_clipped(v, v_carry, dv, n.c[V_MIN], n.c[V_MAX]);
  add_clipped(p, p_carry, dp, -n.c[P_S], n.c[P_S]);
}

}  // namespace cosim
