//! Distances between two sets of feature vectors (InceptionV3 `pool_3` features of
//! real and generated pictures): FID (Heusel et al. 2017), the Fréchet distance of the
//! Gaussians fitted to each set, and KID (Bińkowski et al. 2018), the unbiased squared
//! MMD with the cubic polynomial kernel, which is the honest one at ~1,000 samples.
//!
//! FID's `Tr √(Σ₁Σ₂)` is computed without a 2048x2048 matrix square root: with the
//! centred feature matrices `A` (n₁ x d) and `B` (n₂ x d), the non-zero eigenvalues of
//! `Σ₁Σ₂` are those of `(ABᵀ)(ABᵀ)ᵀ / ((n₁−1)(n₂−1))`, an n₁ x n₁ symmetric matrix, so
//! the trace is the sum of the square roots of its eigenvalues (Jacobi rotations).

/// Fréchet Inception distance between two sets (rows of equal length).
pub fn fid(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    let (ma, mb) = (mean(a), mean(b));
    let (ca, cb) = (centred(a, &ma), centred(b, &mb));
    let (na, nb) = ((a.len() - 1).max(1) as f64, (b.len() - 1).max(1) as f64);
    let trace = |c: &[Vec<f64>], n: f64| c.iter().flatten().map(|v| v * v).sum::<f64>() / n;
    let cross: Vec<Vec<f64>> = ca
        .iter()
        .map(|x| cb.iter().map(|y| dot(x, y)).collect())
        .collect(); // A Bᵀ, n₁ x n₂
    let gram: Vec<Vec<f64>> = cross
        .iter()
        .map(|x| cross.iter().map(|y| dot(x, y)).collect())
        .collect(); // (A Bᵀ)(A Bᵀ)ᵀ, n₁ x n₁
    let root_trace: f64 = symmetric_eigenvalues(gram)
        .into_iter()
        .map(|l| l.max(0.0).sqrt())
        .sum::<f64>()
        / (na * nb).sqrt();
    let shift: f64 = ma.iter().zip(&mb).map(|(x, y)| (x - y).powi(2)).sum();
    (shift + trace(&ca, na) + trace(&cb, nb) - 2.0 * root_trace).max(0.0)
}

/// Kernel Inception distance: unbiased MMD² with `k(x, y) = (xᵀy/d + 1)³`.
pub fn kid(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    let d = a.first().map_or(1, Vec::len) as f64;
    let k = |x: &[f64], y: &[f64]| (dot(x, y) / d + 1.0).powi(3);
    let within = |s: &[Vec<f64>]| -> f64 {
        let n = s.len() as f64;
        let mut total = 0.0;
        for i in 0..s.len() {
            for j in i + 1..s.len() {
                total += 2.0 * k(&s[i], &s[j]);
            }
        }
        total / (n * (n - 1.0)).max(1.0)
    };
    let between: f64 = a
        .iter()
        .flat_map(|x| b.iter().map(move |y| k(x, y)))
        .sum::<f64>()
        / (a.len() * b.len()).max(1) as f64;
    within(a) + within(b) - 2.0 * between
}

fn dot(x: &[f64], y: &[f64]) -> f64 {
    x.iter().zip(y).map(|(a, b)| a * b).sum()
}

fn mean(rows: &[Vec<f64>]) -> Vec<f64> {
    let d = rows.first().map_or(0, Vec::len);
    let mut m = vec![0.0; d];
    for row in rows {
        for (a, b) in m.iter_mut().zip(row) {
            *a += b;
        }
    }
    m.iter_mut().for_each(|v| *v /= rows.len().max(1) as f64);
    m
}

fn centred(rows: &[Vec<f64>], mean: &[f64]) -> Vec<Vec<f64>> {
    rows.iter()
        .map(|r| r.iter().zip(mean).map(|(a, b)| a - b).collect())
        .collect()
}

/// Eigenvalues of a symmetric matrix by cyclic Jacobi rotations.
pub fn symmetric_eigenvalues(mut m: Vec<Vec<f64>>) -> Vec<f64> {
    let n = m.len();
    let scale: f64 = m
        .iter()
        .flatten()
        .map(|v| v * v)
        .sum::<f64>()
        .sqrt()
        .max(f64::MIN_POSITIVE);
    for _sweep in 0..60 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[i][j] * m[i][j])
            .sum::<f64>()
            .sqrt();
        if off <= 1e-12 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[p][q];
                if apq.abs() <= 1e-300 {
                    continue;
                }
                let theta = (m[q][q] - m[p][p]) / (2.0 * apq);
                let sign = if theta >= 0.0 { 1.0 } else { -1.0 };
                let t = sign / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for row in m.iter_mut() {
                    let (akp, akq) = (row[p], row[q]);
                    row[p] = c * akp - s * akq;
                    row[q] = s * akp + c * akq;
                }
                let (low, high) = m.split_at_mut(q);
                for (x, y) in low[p].iter_mut().zip(high[0].iter_mut()) {
                    let (apk, aqk) = (*x, *y);
                    *x = c * apk - s * aqk;
                    *y = s * apk + c * aqk;
                }
            }
        }
    }
    (0..n).map(|i| m[i][i]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn gaussian(n: usize, d: usize, shift: f64, rng: &mut StdRng) -> Vec<Vec<f64>> {
        (0..n)
            .map(|_| {
                (0..d)
                    .map(|_| {
                        let (u, v): (f64, f64) =
                            (rng.random_range(f64::EPSILON..1.0), rng.random());
                        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos() + shift
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn jacobi_finds_known_eigenvalues() {
        let m = vec![
            vec![2.0, 1.0, 0.0],
            vec![1.0, 2.0, 0.0],
            vec![0.0, 0.0, 5.0],
        ];
        let mut e = symmetric_eigenvalues(m);
        e.sort_by(f64::total_cmp);
        for (got, want) in e.iter().zip([1.0, 3.0, 5.0]) {
            assert!((got - want).abs() < 1e-9, "{e:?}");
        }
    }

    #[test]
    fn fid_of_shifted_gaussians_is_the_squared_shift() {
        let mut rng = StdRng::seed_from_u64(1);
        let a = gaussian(400, 6, 0.0, &mut rng);
        let b = gaussian(400, 6, 0.5, &mut rng);
        let same = gaussian(400, 6, 0.0, &mut rng);
        let shifted = fid(&a, &b);
        // ‖shift‖² = 6 · 0.25 = 1.5, plus sampling noise of the covariances.
        assert!((shifted - 1.5).abs() < 0.25, "{shifted}");
        assert!(fid(&a, &same) < 0.2, "{}", fid(&a, &same));
        assert!(fid(&a, &a) < 1e-6);
    }

    #[test]
    fn kid_is_near_zero_for_one_distribution_and_positive_for_two() {
        let mut rng = StdRng::seed_from_u64(2);
        let a = gaussian(300, 6, 0.0, &mut rng);
        let same = gaussian(300, 6, 0.0, &mut rng);
        let other = gaussian(300, 6, 0.5, &mut rng);
        assert!(kid(&a, &same).abs() < 0.05, "{}", kid(&a, &same));
        assert!(kid(&a, &other) > 0.2, "{}", kid(&a, &other));
    }
}
