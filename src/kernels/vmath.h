// Vectorised expf from glibc's libmvec: declaring expf "omp declare simd" lets the
// compiler call libmvec's AVX-512 (or AVX2) expf, 16 (8) lanes at a time, in loops
// marked "omp simd" (softmax, cross-entropy, SiLU). libmvec's expf is accurate to a few
// ulp (measured 2e-7 relative); the scalar expf stays where this header is not included.
#pragma once
#include <math.h>

#if defined(__x86_64__) && defined(__GLIBC__) && defined(__AVX512F__)
#pragma omp declare simd simdlen(16) notinbranch
float expf(float);
#elif defined(__x86_64__) && defined(__GLIBC__) && defined(__AVX2__)
#pragma omp declare simd simdlen(8) notinbranch
float expf(float);
#endif
