//! Solving small symmetric positive definite systems by Cholesky, in f64: OMP's least squares
//! over a few atoms, and the closed-form output mapping over d features.

/// What to do with a pivot at or below a floor (a matrix that is singular up to rounding).
#[derive(Debug, Clone, Copy)]
pub(super) enum SmallPivot {
    /// Give up: the system has no reliable solution.
    Fail(f64),
    /// Raise it to the floor and go on.
    Clamp(f64),
}

/// Solves `A X = B` in place (`B` becomes `X`) for a symmetric positive definite `A` (`n × n`,
/// overwritten by its Cholesky factor) and `B` (`n × k`), both row-major; `None` when a pivot
/// falls to the floor of [`SmallPivot::Fail`] or is not a number.
pub(super) fn solve(a: &mut [f64], n: usize, b: &mut [f64], k: usize, small: SmallPivot) -> Option<()> {
    // A = L Lᵀ, L in the lower triangle of `a`
    for j in 0..n {
        let row_j = &a[j * n..j * n + j];
        let diagonal = a[j * n + j] - dot(row_j, row_j);
        let diagonal = match small {
            SmallPivot::Fail(floor) if !(diagonal > floor && diagonal.is_finite()) => return None,
            SmallPivot::Fail(_) => diagonal,
            SmallPivot::Clamp(floor) => diagonal.max(floor),
        };
        let l_jj = diagonal.sqrt();
        a[j * n + j] = l_jj;
        for i in j + 1..n {
            let (above, below) = a.split_at_mut(i * n);
            let value = below[j] - dot(&below[..j], &above[j * n..j * n + j]);
            below[j] = value / l_jj;
        }
    }
    // L Y = B, then Lᵀ X = Y
    for c in 0..k {
        for i in 0..n {
            let mut value = b[i * k + c];
            for p in 0..i {
                value -= a[i * n + p] * b[p * k + c];
            }
            b[i * k + c] = value / a[i * n + i];
        }
        for i in (0..n).rev() {
            let mut value = b[i * k + c];
            for p in i + 1..n {
                value -= a[p * n + i] * b[p * k + c];
            }
            b[i * k + c] = value / a[i * n + i];
        }
    }
    Some(())
}

/// `Σ x_i y_i` in eight independent lanes, which the compiler keeps in vector registers (a
/// single running sum is one dependent add after another): the factorisation's inner loop, with
/// thousands of features for a per-residue mapping that reads neighbours.
fn dot(x: &[f64], y: &[f64]) -> f64 {
    let mut lanes = [0f64; 8];
    let (x_blocks, y_blocks) = (x.chunks_exact(8), y.chunks_exact(8));
    let tail: f64 = x_blocks
        .remainder()
        .iter()
        .zip(y_blocks.remainder())
        .map(|(a, b)| a * b)
        .sum();
    for (x, y) in x_blocks.zip(y_blocks) {
        for lane in 0..8 {
            lanes[lane] += x[lane] * y[lane];
        }
    }
    lanes.iter().sum::<f64>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_a_positive_definite_system_and_refuses_or_clamps_a_singular_one() {
        // A = [[4, 2], [2, 3]], X = [[1, 0], [−1, 2]] → B = A X
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        let mut b = vec![2.0, 4.0, -1.0, 6.0];
        solve(&mut a, 2, &mut b, 2, SmallPivot::Fail(0.0)).unwrap();
        for (got, want) in b.iter().zip([1.0, 0.0, -1.0, 2.0]) {
            assert!((got - want).abs() < 1e-12, "{b:?}");
        }
        let singular = || vec![1.0, 2.0, 2.0, 4.0];
        assert!(solve(&mut singular(), 2, &mut [1.0, 2.0], 1, SmallPivot::Fail(1e-12)).is_none());
        let mut x = [1.0, 2.0];
        assert!(solve(&mut singular(), 2, &mut x, 1, SmallPivot::Clamp(1e-300)).is_some());
        assert!(x.iter().all(|v| v.is_finite()));
    }
}
