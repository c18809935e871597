//! Quorum arithmetic as pure functions, kept apart from the protocols that
//! use it (as raft-rs keeps its quorum module), so it is tested by table.

/// How many of `voters` make a majority.
pub fn majority(voters: usize) -> usize {
    assert!(voters > 0, "a quorum of no voters");
    voters / 2 + 1
}

/// Whether `votes` of `voters` are a majority.
pub fn is_majority(votes: usize, voters: usize) -> bool {
    votes >= majority(voters)
}

/// The highest value a majority has reached, given every voter's value
/// (the leader's own included): the commit index from match indexes.
/// Reorders `values` (it selects in place rather than allocate).
pub fn majority_reached<T: Ord + Copy>(values: &mut [T]) -> T {
    let k = majority(values.len()) - 1;
    let (_, &mut reached, _) = values.select_nth_unstable_by(k, |a, b| b.cmp(a));
    debug_assert!(values.iter().filter(|&&v| v >= reached).count() > k);
    reached
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majorities_by_table() {
        for (voters, needed) in [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (6, 4), (7, 4), (99, 50)] {
            assert_eq!(majority(voters), needed, "{voters} voters");
            assert!(is_majority(needed, voters) && !is_majority(needed - 1, voters));
        }
    }

    #[test]
    fn the_value_a_majority_reached_by_table() {
        let cases: &[(&[u64], u64)] = &[
            (&[7], 7),
            (&[5, 3, 9], 5),
            (&[0, 0, 9], 0),
            (&[4, 4, 2, 9, 1], 4),
            (&[1, 2, 3, 4], 2),
            (&[10, 10, 10, 0, 0], 10),
        ];
        for &(values, reached) in cases {
            assert_eq!(majority_reached(&mut values.to_vec()), reached, "{values:?}");
        }
    }
}
