//! The multinomial diffusion of ImageBART (Eq. 5-6, after Hoogeboom et al. 2021): each
//! step keeps a token with probability `1 − β_t` and otherwise replaces it by a token
//! drawn uniformly from the `K` codes (which may be the same one).
//!
//! - one step: `q(x_t | x_{t−1}) = Cat((1 − β_t)·x_{t−1} + β_t/K)`;
//! - closed form: `q(x_t | x_0) = Cat(ᾱ_t·x_0 + (1 − ᾱ_t)/K)`, `ᾱ_t = Π_{s≤t} (1 − β_s)`;
//! - posterior: `q(x_{t−1} | x_t, x_0) ∝ [α_t·x_t + (1 − α_t)/K] ⊙ [ᾱ_{t−1}·x_0 + (1 − ᾱ_{t−1})/K]`.
//!
//! Tokens are indices; a distribution over the codes is a `Vec<f64>` of length `K`.
//! The masked process (App. A.3) diffuses only where a mask says so.

use rand::Rng;

/// A chain of `T` steps over `K` codes.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Schedule {
    /// `β_1 … β_T`.
    pub betas: Vec<f64>,
    /// Codebook size `K`.
    pub codes: usize,
}

impl Schedule {
    /// Steps in the chain.
    pub fn steps(&self) -> usize {
        self.betas.len()
    }

    /// `ᾱ_t`: the probability that a token survives the first `t` steps untouched
    /// (`ᾱ_0 = 1`).
    pub fn alpha_bar(&self, t: usize) -> f64 {
        self.betas[..t].iter().map(|b| 1.0 - b).product()
    }

    /// `q(x_t = k | x_0 = token)` for every `k`.
    pub fn marginal(&self, token: usize, t: usize) -> Vec<f64> {
        let keep = self.alpha_bar(t);
        let mut p = vec![(1.0 - keep) / self.codes as f64; self.codes];
        p[token] += keep;
        p
    }

    /// `q(x_{t−1} = k | x_t, x_0)` for every `k` (`t ≥ 1`).
    pub fn posterior(&self, x_t: usize, x_0: usize, t: usize) -> Vec<f64> {
        let k = self.codes as f64;
        let alpha = 1.0 - self.betas[t - 1];
        let before = self.marginal(x_0, t - 1);
        let mut p: Vec<f64> = before
            .iter()
            .enumerate()
            .map(|(code, b)| {
                let step = if code == x_t { alpha } else { 0.0 } + (1.0 - alpha) / k;
                step * b
            })
            .collect();
        let total: f64 = p.iter().sum();
        p.iter_mut().for_each(|v| *v /= total);
        p
    }

    /// A draw of `x_t` from `x_0` in closed form, each token independently; where
    /// `mask` is given, only its `true` entries diffuse (App. A.3).
    pub fn diffuse(
        &self,
        x_0: &[usize],
        t: usize,
        mask: Option<&[bool]>,
        rng: &mut impl Rng,
    ) -> Vec<usize> {
        let keep = self.alpha_bar(t);
        x_0.iter()
            .enumerate()
            .map(|(i, &token)| {
                let free = mask.is_none_or(|m| m[i]);
                if free && !rng.random_bool(keep.clamp(0.0, 1.0)) {
                    rng.random_range(0..self.codes)
                } else {
                    token
                }
            })
            .collect()
    }

    /// One forward step, `x_{t−1} → x_t`, for every token.
    pub fn step(&self, x: &[usize], t: usize, rng: &mut impl Rng) -> Vec<usize> {
        let beta = self.betas[t - 1];
        x.iter()
            .map(|&token| {
                if rng.random_bool(beta) {
                    rng.random_range(0..self.codes)
                } else {
                    token
                }
            })
            .collect()
    }

    /// A schedule whose `T` steps leave `ᾱ_t` falling linearly from 1 to `final_keep`
    /// (so each step removes about the same share of the picture's information).
    pub fn linear_keep(steps: usize, codes: usize, final_keep: f64) -> Self {
        let keep = |t: usize| 1.0 - (1.0 - final_keep) * t as f64 / steps as f64;
        let betas = (1..=steps).map(|t| 1.0 - keep(t) / keep(t - 1)).collect();
        Self { betas, codes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn schedule() -> Schedule {
        Schedule {
            betas: vec![0.3, 0.5, 0.8],
            codes: 6,
        }
    }

    #[test]
    fn the_closed_form_matches_a_simulated_chain() {
        let schedule = schedule();
        let mut rng = StdRng::seed_from_u64(17);
        let runs = 40_000;
        for t in 1..=schedule.steps() {
            let mut counts = vec![0usize; schedule.codes];
            for _ in 0..runs {
                let mut x = vec![2usize];
                for s in 1..=t {
                    x = schedule.step(&x, s, &mut rng);
                }
                counts[x[0]] += 1;
            }
            for (code, (&count, p)) in counts.iter().zip(schedule.marginal(2, t)).enumerate() {
                let freq = count as f64 / runs as f64;
                // Five standard errors of a binomial frequency.
                let tolerance = 5.0 * (p * (1.0 - p) / runs as f64).sqrt();
                assert!(
                    (freq - p).abs() < tolerance,
                    "t {t}, code {code}: {freq} vs {p}"
                );
            }
        }
    }

    #[test]
    fn the_closed_form_draw_matches_the_marginal() {
        let schedule = schedule();
        let mut rng = StdRng::seed_from_u64(3);
        let x_0 = vec![4usize; 50_000];
        let x_2 = schedule.diffuse(&x_0, 2, None, &mut rng);
        let same = x_2.iter().filter(|&&k| k == 4).count() as f64 / x_0.len() as f64;
        let p = schedule.marginal(4, 2)[4];
        assert!(
            (same - p).abs() < 5.0 * (p * (1.0 - p) / x_0.len() as f64).sqrt(),
            "{same} vs {p}"
        );
    }

    #[test]
    fn the_posterior_is_a_distribution_with_the_right_limits() {
        let schedule = schedule();
        for t in 1..=3 {
            for (x_t, x_0) in [(1, 1), (1, 4), (5, 0)] {
                let p = schedule.posterior(x_t, x_0, t);
                assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
                assert!(p.iter().all(|&v| v >= 0.0));
            }
        }
        // t = 1: x_0 is x_{t−1} itself.
        let p = schedule.posterior(3, 1, 1);
        assert!((p[1] - 1.0).abs() < 1e-12, "{p:?}");
        // A step that changes nothing (β = 0): x_{t−1} is x_t.
        let still = Schedule {
            betas: vec![0.5, 0.0],
            codes: 6,
        };
        let p = still.posterior(4, 1, 2);
        assert!((p[4] - 1.0).abs() < 1e-12, "{p:?}");
        // A step that forgets everything (β = 1): the posterior is q(x_{t−1} | x_0).
        let forget = Schedule {
            betas: vec![0.5, 1.0],
            codes: 6,
        };
        let p = forget.posterior(4, 1, 2);
        for (a, b) in p.iter().zip(forget.marginal(1, 1)) {
            assert!((a - b).abs() < 1e-12);
        }
    }

    #[test]
    fn masked_diffusion_never_changes_an_unmasked_token() {
        let schedule = schedule();
        let mut rng = StdRng::seed_from_u64(9);
        for _ in 0..200 {
            let n = rng.random_range(1..300);
            let x_0: Vec<usize> = (0..n).map(|_| rng.random_range(0..6)).collect();
            let mask: Vec<bool> = (0..n).map(|_| rng.random_bool(0.3)).collect();
            let x_t = schedule.diffuse(&x_0, 3, Some(&mask), &mut rng);
            for i in 0..n {
                if !mask[i] {
                    assert_eq!(x_t[i], x_0[i]);
                }
            }
        }
    }

    #[test]
    fn a_linear_keep_schedule_ends_where_asked() {
        let schedule = Schedule::linear_keep(3, 512, 0.1);
        assert!((schedule.alpha_bar(3) - 0.1).abs() < 1e-12);
        assert!((schedule.alpha_bar(1) - 0.7).abs() < 1e-12);
    }
}
