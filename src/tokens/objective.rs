//! The teacher-forced training objective of every token model: inputs shifted right
//! behind a start token, and the negative log-likelihood of the targets that count.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;

/// The input ids of the target positions for a token grid: the start token, then the
/// grid's tokens but the last (position `p` holds token `p − 1`).
pub fn shift_right(grid: &[i64], start: i64) -> Vec<i64> {
    std::iter::once(start)
        .chain(grid[..grid.len().saturating_sub(1)].iter().copied())
        .collect()
}

/// Mean negative log-likelihood of the targets where `weights` is 1 (iLAT Eq. 6).
///
/// # Shapes
/// - logits: `[B, N, V]`; targets, weights: `[B, N]`
pub fn masked_nll(logits: Tensor<3>, targets: Tensor<2, Int>, weights: Tensor<2>) -> Tensor<1> {
    let picked = log_softmax(logits, 2)
        .gather(2, targets.unsqueeze_dim(2))
        .squeeze_dim::<2>(2);
    let count = weights.clone().sum().clamp_min(1.0);
    (picked * weights).sum().neg() / count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_nll_counts_weighted_positions_only() {
        let device = Device::flex();
        let logits = Tensor::<3>::from_data(
            TensorData::new(vec![0.0f32, 0.0, 5.0, -5.0], [1, 2, 2]),
            &device,
        );
        let targets = Tensor::<2, Int>::from_data(TensorData::new(vec![0i64, 1], [1, 2]), &device);
        let only_first = masked_nll(
            logits.clone(),
            targets.clone(),
            Tensor::from_data(TensorData::new(vec![1.0f32, 0.0], [1, 2]), &device),
        );
        let value = only_first.into_scalar::<f32>() as f64;
        assert!((value - std::f64::consts::LN_2).abs() < 1e-5, "{value}");
        let both =
            masked_nll(logits, targets, Tensor::ones([1, 2], &device)).into_scalar::<f32>() as f64;
        assert!(
            both > 4.0,
            "the second position is confidently wrong: {both}"
        );
    }

    #[test]
    fn shift_right_puts_the_start_token_first() {
        assert_eq!(shift_right(&[4, 5, 6], 9), vec![9, 4, 5]);
        assert_eq!(shift_right(&[], 9), vec![9]);
    }
}
