//! Element-wise kernels of the packed CPU encoder, written as plain loops that LLVM vectorises,
//! compiled for AVX-512 and AVX2+FMA and picked at run time (with a portable fallback).

/// Defines `fn name(args)` whose body is compiled three times (AVX-512, AVX2+FMA, baseline); the
/// call runs the best one the CPU supports.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn portable($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                fn avx512($($arg: $ty),*) { portable($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) { portable($($arg),*) }
                let avx2_fma = std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma");
                if avx2_fma
                    && std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                {
                    // SAFETY: the CPU has every feature `avx512` is compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if avx2_fma {
                    // SAFETY: the CPU has every feature `avx2` is compiled for.
                    return unsafe { avx2($($arg),*) };
                }
            }
            portable($($arg),*)
        }
    };
}

const LANES: usize = 16;

/// Sum with 16 independent accumulators (so that it vectorises).
#[inline(always)]
fn sum(xs: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (a, x) in acc.iter_mut().zip(chunk) {
            *a += x;
        }
    }
    acc.iter().sum::<f32>() + tail.iter().sum::<f32>()
}

/// Maximum with 16 independent lanes.
#[inline(always)]
fn max(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (a, &x) in acc.iter_mut().zip(chunk) {
            *a = if x > *a { x } else { *a };
        }
    }
    acc.iter()
        .chain(tail)
        .fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m })
}

/// `e^x` for `x` in [-87, 88] within ~2 ulp (Cephes' polynomial), branch-free.
#[inline(always)]
pub(super) fn exp(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 · 2^23: adding it rounds to an integer
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * std::f32::consts::LOG2_E + MAGIC;
    let n = shifted - MAGIC;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 1.666_666_5e-1)
        * r
        + 0.5;
    let e = p * r * r + r + 1.0;
    // `n + 127` as the float's exponent bits. Wrapping arithmetic (the clamp keeps it in range):
    // an overflow check here kept the loops that call `exp` scalar in builds with overflow
    // checks at opt-level 3 (BENCHMARKS.md "The dev profile's GEMMs").
    let exponent = (shifted.to_bits() as i32)
        .wrapping_sub(MAGIC.to_bits() as i32)
        .wrapping_add(127)
        << 23;
    e * f32::from_bits(exponent as u32)
}

/// `erf(x)` as a rational polynomial on [-4, 4] (±1 outside), max error ≈ 4e-7, branch-free.
#[inline(always)]
pub(super) fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let p = ((((((-2.726_142_3e-10 * x2 + 2.770_681_4e-8) * x2 - 2.101_024e-6) * x2 - 5.692_506_4e-5) * x2
        - 7.349_906_3e-4)
        * x2
        - 2.954_6e-3)
        * x2
        - 1.609_603_3e-2)
        * x;
    let q = (((-1.456_607_2e-5 * x2 - 2.133_740_6e-4) * x2 - 1.682_827e-3) * x2 - 7.373_329e-3) * x2 - 1.426_474e-2;
    p / q
}

multiversion! {
    /// `x = GELU(x + bias)` for each `bias.len()`-wide row, with the exact (erf) GELU
    /// `x · (1 + erf(x / √2)) / 2`.
    pub fn bias_gelu(rows: &mut [f32], bias: &[f32]) {
        for row in rows.chunks_exact_mut(bias.len()) {
            for (x, b) in row.iter_mut().zip(bias) {
                let v = *x + b;
                *x = 0.5 * v * (1.0 + erf(v * std::f32::consts::FRAC_1_SQRT_2));
            }
        }
    }
}

multiversion! {
    /// `x += bias` for each `bias.len()`-wide row.
    pub fn add_bias(rows: &mut [f32], bias: &[f32]) {
        for row in rows.chunks_exact_mut(bias.len()) {
            for (x, b) in row.iter_mut().zip(bias) {
                *x += b;
            }
        }
    }
}

multiversion! {
    /// `x = e^(x - max(row))` for each `width`-wide row; pushes `1 / sum(row)` to `inverse_sums`
    /// (a softmax, less its final scaling).
    pub fn exp_rows(xs: &mut [f32], width: usize, inverse_sums: &mut Vec<f32>) {
        for row in xs.chunks_exact_mut(width) {
            let m = max(row);
            let mut acc = [0f32; LANES];
            for chunk in row.chunks_mut(LANES) {
                for (a, x) in acc.iter_mut().zip(chunk.iter_mut()) {
                    *x = exp(*x - m);
                    *a += *x;
                }
            }
            inverse_sums.push(1.0 / acc.iter().sum::<f32>());
        }
    }
}

multiversion! {
    /// `rows = LayerNorm(rows + row_bias + residual)` row by row (`weight.len()` wide); `row_bias`
    /// and `residual` may be empty.
    pub fn add_layer_norm(rows: &mut [f32], row_bias: &[f32], residual: &[f32], weight: &[f32], bias: &[f32], eps: f32) {
        let d = weight.len();
        if !residual.is_empty() {
            for (x, r) in rows.iter_mut().zip(residual) {
                *x += r;
            }
        }
        for row in rows.chunks_exact_mut(d) {
            if !row_bias.is_empty() {
                for (x, b) in row.iter_mut().zip(row_bias) {
                    *x += b;
                }
            }
            let mean = sum(row) / d as f32;
            for x in row.iter_mut() {
                *x -= mean;
            }
            let mut squares = [0f32; LANES];
            for chunk in row.chunks(LANES) {
                for (s, x) in squares.iter_mut().zip(chunk) {
                    *s += x * x;
                }
            }
            let inv_std = 1.0 / (squares.iter().sum::<f32>() / d as f32 + eps).sqrt();
            for ((x, w), b) in row.iter_mut().zip(weight).zip(bias) {
                *x = *x * inv_std * w + b;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf by its Taylor series in f64 (accurate for |x| < 3).
    fn erf_reference(x: f64) -> f64 {
        let (mut term, mut total, mut n) = (x, x, 0.0);
        while term.abs() > 1e-17 {
            n += 1.0;
            term *= -x * x / n;
            total += term / (2.0 * n + 1.0);
        }
        total * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn erf_and_exp_are_accurate() {
        for i in -3000..=3000 {
            let x = i as f32 / 1000.0;
            assert!(
                (f64::from(erf(x)) - erf_reference(f64::from(x))).abs() < 1e-6,
                "erf({x})"
            );
        }
        assert!((erf(9.0) - 1.0).abs() < 1e-6 && (erf(-9.0) + 1.0).abs() < 1e-6);
        for i in -8700..=8800 {
            let x = i as f32 / 100.0;
            let expected = f64::from(x).exp();
            assert!(((f64::from(exp(x)) - expected) / expected).abs() < 1e-6, "exp({x})");
        }
    }

    #[test]
    fn kernels_match_their_definitions() {
        let original: Vec<f32> = (0..100).map(|i| (i as f32 - 50.0) / 13.0).collect();
        let bias: Vec<f32> = (0..25).map(|i| i as f32 / 50.0).collect();
        let mut xs = original.clone();
        bias_gelu(&mut xs, &bias);
        for (i, (g, x)) in xs.iter().zip(&original).enumerate() {
            let v = f64::from(*x) + f64::from(bias[i % 25]);
            let expected = 0.5 * v * (1.0 + erf_reference(v / 2f64.sqrt()));
            assert!((f64::from(*g) - expected).abs() < 1e-6);
        }
        let mut xs = original.clone();
        add_bias(&mut xs, &bias);
        assert!(
            xs.iter()
                .zip(&original)
                .enumerate()
                .all(|(i, (y, x))| *y == x + bias[i % 25])
        );

        let mut rows = original.clone();
        let mut inverse_sums = Vec::new();
        exp_rows(&mut rows, 20, &mut inverse_sums);
        assert_eq!(inverse_sums.len(), 5);
        for ((row, x), inv) in rows.chunks(20).zip(original.chunks(20)).zip(&inverse_sums) {
            let total: f64 = x.iter().map(|v| f64::from(*v).exp()).sum();
            for (p, v) in row.iter().zip(x) {
                assert!((f64::from(p * inv) - f64::from(*v).exp() / total).abs() < 1e-6);
            }
        }

        let mut rows = original.clone();
        let weight = vec![2.0; 25];
        let beta = vec![0.5; 25];
        add_layer_norm(&mut rows, &bias, &original, &weight, &beta, 1e-12);
        for (row, x) in rows.chunks(25).zip(original.chunks(25)) {
            let v: Vec<f64> = x
                .iter()
                .zip(&bias)
                .map(|(v, b)| 2.0 * f64::from(*v) + f64::from(*b))
                .collect();
            let mean = v.iter().sum::<f64>() / 25.0;
            let var = v.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 25.0;
            for (y, v) in row.iter().zip(&v) {
                let expected = (v - mean) / var.sqrt() * 2.0 + 0.5;
                assert!((f64::from(*y) - expected).abs() < 1e-5);
            }
        }
    }
}
