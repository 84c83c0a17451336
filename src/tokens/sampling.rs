//! How a token is drawn from a model's logits: top-k, temperature, one seeded draw.

use burn::prelude::*;
use rand::Rng;

/// How tokens are drawn from the logits (the user's settings of a regeneration).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sampling {
    /// Keep the `top_k` most likely tokens (0 = all).
    pub top_k: usize,
    /// Softmax temperature; 0 picks the most likely token.
    pub temperature: f32,
    /// Seed of the draws.
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Self {
            top_k: 100,
            temperature: 1.0,
            seed: 0,
        }
    }
}

/// Draws a token from logits with top-k and temperature.
pub fn draw(
    logits: Tensor<1>,
    sampling: &Sampling,
    rng: &mut impl Rng,
) -> Result<usize, burn::tensor::TensorReadError> {
    let logits = logits.try_into_vec_as::<f32>()?;
    Ok(choose(&logits, sampling, rng))
}

/// Top-k, temperature, then one uniform draw over the cumulative weights.
pub fn choose(logits: &[f32], sampling: &Sampling, rng: &mut impl Rng) -> usize {
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    if sampling.temperature <= 0.0 || order.len() < 2 {
        return order.first().copied().unwrap_or(0);
    }
    let k = if sampling.top_k == 0 {
        order.len()
    } else {
        sampling.top_k.min(order.len())
    };
    let best = logits[order[0]];
    let weights: Vec<f64> = order[..k]
        .iter()
        .map(|&i| (((logits[i] - best) / sampling.temperature) as f64).exp())
        .collect();
    let mut u = rng.random::<f64>() * weights.iter().sum::<f64>();
    for (&i, w) in order.iter().zip(&weights) {
        if u < *w {
            return i;
        }
        u -= w;
    }
    order[k - 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    /// Top-k at temperature 1.
    fn top(k: usize) -> Sampling {
        Sampling {
            top_k: k,
            ..Sampling::default()
        }
    }

    #[test]
    fn top_one_is_the_most_likely_token() {
        let mut rng = StdRng::seed_from_u64(0);
        let sampling = top(1);
        assert_eq!(choose(&[0.1, 3.0, -1.0], &sampling, &mut rng), 1);
        let greedy = Sampling {
            temperature: 0.0,
            ..sampling
        };
        assert_eq!(choose(&[0.1, -3.0, 2.0], &greedy, &mut rng), 2);
    }

    #[test]
    fn top_k_never_draws_outside_the_k_best() {
        let mut rng = StdRng::seed_from_u64(9);
        let sampling = top(2);
        for _ in 0..200 {
            let token = choose(&[0.5, 0.4, 0.45, -2.0], &sampling, &mut rng);
            assert!(token == 0 || token == 2, "drew {token}");
        }
    }
}
