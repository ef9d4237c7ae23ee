//! Solving symmetric positive definite systems by Cholesky, in f64: OMP's least squares
//! over a few atoms, and the closed-form output mapping over up to thousands of features.

use rayon::prelude::*;

use crate::model::{View, matmul};

/// What to do with a pivot at or below a floor (a matrix that is singular up to rounding).
#[derive(Debug, Clone, Copy)]
pub(super) enum SmallPivot {
    /// Give up: the system has no reliable solution.
    Fail(f64),
    /// Raise it to the floor and go on.
    Clamp(f64),
}

/// Columns per block of the factorisation: below this size `A` is factored row by row; above
/// it, each block of columns updates the rest of the matrix with one GEMM per block of rows.
const BLOCK: usize = 128;

/// Solves `A X = B` in place (`B` becomes `X`) for a symmetric positive definite `A` (`n × n`,
/// its lower triangle overwritten by its Cholesky factor, the rest left undefined) and `B`
/// (`n × k`), both row-major; `None` when a pivot falls to the floor of [`SmallPivot::Fail`] or
/// is not a number.
pub(super) fn solve(a: &mut [f64], n: usize, b: &mut [f64], k: usize, small: SmallPivot) -> Option<()> {
    factor(a, n, small, BLOCK)?;
    substitute(a, n, b, k);
    Some(())
}

/// `A = L Lᵀ`, `L` in the lower triangle of `a`, a block of `block` columns at a time
/// (right-looking): factor the diagonal block row by row, solve the rows below it for their
/// part of `L`, subtract those rows' products from the rest of the lower triangle (GEMMs on all
/// cores). The blocks turn a factorisation that read every row from memory once per column
/// (a single core at a few GFLOP/s: minutes for the 11,520 features of two layers' states of a
/// residue with 7 neighbours on either side) into matrix products.
fn factor(a: &mut [f64], n: usize, small: SmallPivot, block: usize) -> Option<()> {
    let mut panel = Vec::new();
    for start in (0..n).step_by(block) {
        let end = (start + block).min(n);
        // the diagonal block, row by row: each row solved against the rows above it, then its
        // pivot
        for i in start..end {
            let (factored, rest) = a.split_at_mut(i * n);
            let row = &mut rest[..n];
            solve_row(row, factored, n, start, i);
            let diagonal = row[i] - dot(&row[start..i], &row[start..i]);
            let diagonal = match small {
                SmallPivot::Fail(floor) if !(diagonal > floor && diagonal.is_finite()) => return None,
                SmallPivot::Fail(_) => diagonal,
                SmallPivot::Clamp(floor) => diagonal.max(floor),
            };
            row[i] = diagonal.sqrt();
        }
        if end == n {
            break;
        }
        // the rows below it, each solved against the diagonal block, in parallel
        let (factored, below) = a.split_at_mut(end * n);
        below
            .par_chunks_mut(n)
            .for_each(|row| solve_row(row, factored, n, start, end));
        // the rest of the lower triangle, a block of rows at a time: A[r, c] −= L[r, ·] L[c, ·]ᵀ
        let width = end - start;
        let rows = n - end;
        panel.clear();
        panel.extend(below.chunks_exact(n).flat_map(|row| &row[start..end]));
        for first in (0..rows).step_by(block) {
            let last = (first + block).min(rows);
            let lhs = View::new(&panel[first * width..], last - first, width, width, 1);
            let rhs = View::new(&panel, width, last, 1, width);
            matmul(
                &mut below[first * n + end..],
                n,
                true,
                lhs,
                rhs,
                -1.0,
                rayon::current_num_threads(),
            );
        }
    }
    Some(())
}

/// Solves `row[start..upto]` for its part of `L`, given `L`'s rows `start..upto` in `factored`
/// (row-major, `n` wide, from row 0) and what earlier blocks already subtracted:
/// `row[j] = (row[j] − Σ_{start ≤ p < j} row[p] L[j, p]) / L[j, j]`.
fn solve_row(row: &mut [f64], factored: &[f64], n: usize, start: usize, upto: usize) {
    for j in start..upto {
        let l_j = &factored[j * n..];
        row[j] = (row[j] - dot(&row[start..j], &l_j[start..j])) / l_j[j];
    }
}

/// `L Y = B`, then `Lᵀ X = Y`, `B` becoming `X`; `L` is the lower triangle of `a`, read a row at
/// a time in both directions, and `B` a row at a time too (a fit of 1,195 classes has rows of
/// 1,195 values).
fn substitute(a: &[f64], n: usize, b: &mut [f64], k: usize) {
    for i in 0..n {
        let (solved, from_i) = b.split_at_mut(i * k);
        let y_i = &mut from_i[..k];
        for (l, y_p) in a[i * n..i * n + i].iter().zip(solved.chunks_exact(k)) {
            for (y, y_p) in y_i.iter_mut().zip(y_p) {
                *y -= l * y_p;
            }
        }
        y_i.iter_mut().for_each(|y| *y /= a[i * n + i]);
    }
    for i in (0..n).rev() {
        let (before, from_i) = b.split_at_mut(i * k);
        let x_i = &mut from_i[..k];
        x_i.iter_mut().for_each(|x| *x /= a[i * n + i]);
        for (l, x_p) in a[i * n..i * n + i].iter().zip(before.chunks_exact_mut(k)) {
            for (x_p, x) in x_p.iter_mut().zip(x_i.iter()) {
                *x_p -= l * x;
            }
        }
    }
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

    /// A random symmetric positive definite `n × n` matrix, row-major: `M Mᵀ + n·I`.
    fn positive_definite(n: usize, seed: u64) -> Vec<f64> {
        let mut state = seed;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let m: Vec<f64> = (0..n * n).map(|_| next()).collect();
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = (0..n).map(|p| m[i * n + p] * m[j * n + p]).sum::<f64>();
            }
            a[i * n + i] += n as f64;
        }
        a
    }

    #[test]
    fn blocks_of_any_size_give_the_solution_of_the_row_by_row_factorisation() {
        for n in [1, 2, 5, 9, 17, 40] {
            let a = positive_definite(n, n as u64);
            let k = 3;
            let want: Vec<f64> = (0..n * k).map(|i| (i % 7) as f64 - 3.0).collect();
            let b: Vec<f64> = (0..n)
                .flat_map(|i| {
                    let (a, want) = (&a, &want);
                    (0..k).map(move |c| (0..n).map(|p| a[i * n + p] * want[p * k + c]).sum::<f64>())
                })
                .collect();
            // one block is the row-by-row factorisation; 1, 4 and 8 columns cross every kind of
            // block boundary
            for block in [n, 1, 4, 8] {
                let (mut a, mut x) = (a.clone(), b.clone());
                factor(&mut a, n, SmallPivot::Fail(0.0), block).unwrap();
                substitute(&a, n, &mut x, k);
                for (got, want) in x.iter().zip(&want) {
                    assert!((got - want).abs() < 1e-9, "n {n}, block {block}: {got} vs {want}");
                }
            }
        }
        // a singular matrix fails in a later block too
        let n = 12;
        let mut a = positive_definite(n, 3);
        for j in 0..n {
            a[9 * n + j] = a[8 * n + j];
            a[j * n + 9] = a[j * n + 8];
        }
        let largest = (0..n).map(|i| a[i * n + i]).fold(0.0, f64::max);
        assert!(factor(&mut a, n, SmallPivot::Fail(largest * 1e-12), 4).is_none());
    }
}
