//! Minimum-cost assignment (the Hungarian algorithm with potentials, O(n²·m)).
//!
//! `pipeline`'s tracker uses `pathfinding::kuhn_munkres` inside a private, tracker-specific
//! function; edge-agent does not depend on `pathfinding`, and the evaluation needs real-valued
//! costs and rectangular matrices, so this is the short textbook version.

/// Assigns rows to columns of the row-major `rows × cols` matrix `cost` (finite values) so
/// that min(rows, cols) pairs are made and their total cost is least. Returns (row, col)
/// pairs sorted by row.
pub fn min_cost_assignment(rows: usize, cols: usize, cost: &[f64]) -> Vec<(usize, usize)> {
    debug_assert_eq!(cost.len(), rows * cols, "cost matrix is rows × cols");
    if rows == 0 || cols == 0 {
        return Vec::new();
    }
    if rows > cols {
        // The algorithm needs rows ≤ cols: solve the transpose.
        let transposed: Vec<f64> = (0..cols * rows).map(|k| cost[(k % rows) * cols + k / rows]).collect();
        let mut pairs: Vec<(usize, usize)> =
            min_cost_assignment(cols, rows, &transposed).into_iter().map(|(c, r)| (r, c)).collect();
        pairs.sort_unstable();
        return pairs;
    }
    let at = |r: usize, c: usize| cost[r * cols + c];
    // 1-based as in the classic formulation: column 0 is a virtual start, `owner[j]` the row
    // (1-based, 0 = none) holding column j, `u`/`v` the row/column potentials.
    let mut u = vec![0.0f64; rows + 1];
    let mut v = vec![0.0f64; cols + 1];
    let mut owner = vec![0usize; cols + 1];
    let mut way = vec![0usize; cols + 1];
    for row in 1..=rows {
        owner[0] = row;
        let mut j0 = 0usize;
        let mut min_slack = vec![f64::INFINITY; cols + 1];
        let mut used = vec![false; cols + 1];
        loop {
            used[j0] = true;
            let i0 = owner[j0];
            let mut delta = f64::INFINITY;
            let mut j1 = 0usize;
            for j in 1..=cols {
                if used[j] {
                    continue;
                }
                let slack = at(i0 - 1, j - 1) - u[i0] - v[j];
                if slack < min_slack[j] {
                    min_slack[j] = slack;
                    way[j] = j0;
                }
                if min_slack[j] < delta {
                    delta = min_slack[j];
                    j1 = j;
                }
            }
            for j in 0..=cols {
                if used[j] {
                    u[owner[j]] += delta;
                    v[j] -= delta;
                } else {
                    min_slack[j] -= delta;
                }
            }
            j0 = j1;
            if owner[j0] == 0 {
                break;
            }
        }
        // Augment along the alternating path back to the virtual column.
        while j0 != 0 {
            let j1 = way[j0];
            owner[j0] = owner[j1];
            j0 = j1;
        }
    }
    let mut pairs: Vec<(usize, usize)> = (1..=cols).filter(|&j| owner[j] != 0).map(|j| (owner[j] - 1, j - 1)).collect();
    pairs.sort_unstable();
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(cost: &[f64], cols: usize, pairs: &[(usize, usize)]) -> f64 {
        pairs.iter().map(|&(r, c)| cost[r * cols + c]).sum()
    }

    #[test]
    fn beats_greedy_on_a_square_matrix() {
        // Greedy takes the cheapest cell (0,0) = 1 and is left with (1,1) = 100.
        let cost = [1.0, 2.0, 2.0, 100.0];
        let pairs = min_cost_assignment(2, 2, &cost);
        assert_eq!(pairs, vec![(0, 1), (1, 0)]);
        assert_eq!(total(&cost, 2, &pairs), 4.0);
    }

    #[test]
    fn rectangular_both_ways() {
        // 2 × 3: row 0 → col 2, row 1 → col 0 (total 1 + 2).
        let wide = [9.0, 9.0, 1.0, 2.0, 9.0, 3.0];
        assert_eq!(min_cost_assignment(2, 3, &wide), vec![(0, 2), (1, 0)]);
        // Its transpose (3 × 2) gives the same pairs, flipped.
        let tall = [9.0, 2.0, 9.0, 9.0, 1.0, 3.0];
        assert_eq!(min_cost_assignment(3, 2, &tall), vec![(0, 1), (2, 0)]);
        assert!(min_cost_assignment(0, 3, &[]).is_empty());
    }

    #[test]
    fn matches_brute_force_on_a_4x4() {
        let cost = [7.0, 53.0, 183.0, 439.0, 497.0, 383.0, 563.0, 79.0, 627.0, 343.0, 773.0, 959.0, 447.0, 283.0, 463.0, 29.0];
        let pairs = min_cost_assignment(4, 4, &cost);
        let mut best = f64::INFINITY;
        for p in permutations(4) {
            best = best.min(p.iter().enumerate().map(|(r, &c)| cost[r * 4 + c]).sum());
        }
        assert_eq!(total(&cost, 4, &pairs), best);
    }

    fn permutations(n: usize) -> Vec<Vec<usize>> {
        if n == 0 {
            return vec![Vec::new()];
        }
        let mut out = Vec::new();
        for p in permutations(n - 1) {
            for i in 0..=p.len() {
                let mut q = p.clone();
                q.insert(i, n - 1);
                out.push(q);
            }
        }
        out
    }
}
