//! The local-autoregressive (LA) attention mask of iLAT, Eq. 7-8 and Fig. 3(b).
//!
//! The target sequence is `t[s], t_0, …, t_{N−1}`: position 0 holds the start token and
//! position `j + 1` holds token `j`, so the output at position `p` predicts token `p`.
//! Tokens fall in two groups:
//! - the *causal* group: every masked token `t_m`, and every token `t_{m−1}` whose
//!   position predicts a masked token (the start token when `t_0` is masked);
//! - the *global* group: all the others.
//!
//! Every position may attend to every global position (they hold kept tokens only);
//! a causal position also attends to the causal positions at or before it. A global
//! position never attends to a causal one, so no output can see a masked token it (or a
//! later masked token) depends on. Conditions, when present, come first: they attend to
//! each other, and targets attend to them (C2C and T2C all ones, C2T all zeros).

/// Which target positions (`N + 1` of them) are in the causal group.
///
/// `token_mask[j]` is true when token `j` is to be regenerated.
pub fn causal_positions(token_mask: &[bool]) -> Vec<bool> {
    let n = token_mask.len();
    let mut causal = vec![false; n + 1];
    for (j, &masked) in token_mask.iter().enumerate() {
        if masked {
            causal[j + 1] = true; // the masked token itself
            causal[j] = true; // the position that predicts it
        }
    }
    causal
}

/// The full LA mask for `conditions` condition positions followed by the `N + 1`
/// target positions, row-major, `true` where row `i` may attend to column `j`.
pub fn la_mask(conditions: usize, token_mask: &[bool]) -> Vec<bool> {
    let causal = causal_positions(token_mask);
    let targets = causal.len();
    let size = conditions + targets;
    let mut allowed = vec![false; size * size];
    for i in 0..size {
        for j in 0..size {
            allowed[i * size + j] = match (i.checked_sub(conditions), j.checked_sub(conditions)) {
                (None, None) => true,                                            // C2C
                (None, Some(_)) => false,                                        // C2T
                (Some(_), None) => true,                                         // T2C
                (Some(ti), Some(tj)) => !causal[tj] || (causal[ti] && tj <= ti), // T2T
            };
        }
    }
    allowed
}

/// The vanilla autoregressive mask of the Taming baseline: conditions as in
/// [`la_mask`], targets causal.
pub fn vanilla_mask(conditions: usize, tokens: usize) -> Vec<bool> {
    let size = conditions + tokens + 1;
    (0..size * size)
        .map(|k| {
            let (i, j) = (k / size, k % size);
            match (i.checked_sub(conditions), j.checked_sub(conditions)) {
                (None, None) | (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(ti), Some(tj)) => tj <= ti,
            }
        })
        .collect()
}

/// The network's attention mask over its `conditions + N` rows, row-major, `true` =
/// *blocked* (burn's convention): the LA mask of `token_mask` when `local`, else the
/// vanilla mask, without the last target position of Eq. 7-8's sequence (position `N`
/// predicts nothing, so the network never runs it).
pub fn network_mask(conditions: usize, token_mask: &[bool], local: bool) -> Vec<bool> {
    let n = token_mask.len();
    let allowed = if local {
        la_mask(conditions, token_mask)
    } else {
        vanilla_mask(conditions, n)
    };
    let (length, size) = (conditions + n, conditions + n + 1);
    (0..length * length)
        .map(|k| !allowed[(k / length) * size + k % length])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fig. 3(b): a 3x3 token grid with t1, t2, t5 and t7 masked. Rows and columns are
    /// t[s], t0 … t8; 1 = may attend. Global: t[s], t3, t8. Causal: t0, t1, t2, t4, t5,
    /// t6, t7 (masked tokens and their predecessors).
    #[test]
    fn matches_the_papers_three_by_three_example() {
        let mut token_mask = [false; 9];
        for m in [1, 2, 5, 7] {
            token_mask[m] = true;
        }
        #[rustfmt::skip]
        let expected: [[u8; 10]; 10] = [
            //  s  0  1  2  3  4  5  6  7  8
            [1, 0, 0, 0, 1, 0, 0, 0, 0, 1], // t[s] global
            [1, 1, 0, 0, 1, 0, 0, 0, 0, 1], // t0 causal
            [1, 1, 1, 0, 1, 0, 0, 0, 0, 1], // t1 causal
            [1, 1, 1, 1, 1, 0, 0, 0, 0, 1], // t2 causal
            [1, 0, 0, 0, 1, 0, 0, 0, 0, 1], // t3 global
            [1, 1, 1, 1, 1, 1, 0, 0, 0, 1], // t4 causal
            [1, 1, 1, 1, 1, 1, 1, 0, 0, 1], // t5 causal
            [1, 1, 1, 1, 1, 1, 1, 1, 0, 1], // t6 causal
            [1, 1, 1, 1, 1, 1, 1, 1, 1, 1], // t7 causal
            [1, 0, 0, 0, 1, 0, 0, 0, 0, 1], // t8 global
        ];
        let mask = la_mask(0, &token_mask);
        for (i, row) in expected.iter().enumerate() {
            let got: Vec<u8> = (0..10).map(|j| u8::from(mask[i * 10 + j])).collect();
            assert_eq!(got, row.to_vec(), "row {i}");
        }
    }

    #[test]
    fn conditions_see_each_other_and_never_the_targets() {
        let mask = la_mask(2, &[false, true, false]);
        let size = 2 + 4;
        for i in 0..2 {
            assert!(
                mask[i * size..i * size + 2].iter().all(|&a| a),
                "C2C row {i}"
            );
            assert!(
                mask[i * size + 2..(i + 1) * size].iter().all(|&a| !a),
                "C2T row {i}"
            );
        }
        for i in 2..size {
            assert!(mask[i * size] && mask[i * size + 1], "T2C row {i}");
        }
    }

    #[test]
    fn no_position_sees_a_masked_token_at_or_after_what_it_predicts() {
        let token_mask: Vec<bool> = (0..16).map(|j| [3, 4, 9, 15].contains(&j)).collect();
        let mask = la_mask(0, &token_mask);
        let size = 17;
        for p in 0..size {
            for (j, _) in token_mask.iter().enumerate().filter(|(_, m)| **m) {
                // Position p predicts token p; masked token j sits at position j + 1.
                if j >= p {
                    assert!(
                        !mask[p * size + j + 1],
                        "position {p} sees masked token {j}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_wholly_masked_grid_makes_the_la_mask_the_vanilla_one() {
        for conditions in [0, 3] {
            assert_eq!(la_mask(conditions, &[true; 6]), vanilla_mask(conditions, 6));
        }
    }

    #[test]
    fn vanilla_mask_is_lower_triangular_over_targets() {
        let mask = vanilla_mask(0, 3);
        let expected = [1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1];
        assert_eq!(
            mask.iter().map(|&a| u8::from(a)).collect::<Vec<_>>(),
            expected
        );
    }
}
