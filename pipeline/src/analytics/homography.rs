//! Image ↔ ground-plane mapping from four point pairs (a per-camera calibration), for speeds
//! and distances in metres.

/// A 3×3 projective transform, row-major, `h[8] = 1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Homography {
    h: [f64; 9],
}

impl Homography {
    /// Solves the transform taking each `src[i]` to `dst[i]` (direct linear transform with
    /// h33 = 1). `None` when the points are degenerate (three on a line).
    pub fn from_points(src: [(f64, f64); 4], dst: [(f64, f64); 4]) -> Option<Self> {
        let mut a = [[0.0f64; 9]; 8];
        for i in 0..4 {
            let ((x, y), (u, v)) = (src[i], dst[i]);
            a[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
            a[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
        }
        // Gaussian elimination with partial pivoting on the 8×8 system (last column = rhs).
        for col in 0..8 {
            let pivot = (col..8).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
            if a[pivot][col].abs() < 1e-12 {
                return None;
            }
            a.swap(col, pivot);
            for row in 0..8 {
                if row != col {
                    let f = a[row][col] / a[col][col];
                    for k in col..9 {
                        a[row][k] -= f * a[col][k];
                    }
                }
            }
        }
        let mut h = [0.0; 9];
        for i in 0..8 {
            h[i] = a[i][8] / a[i][i];
        }
        h[8] = 1.0;
        Some(Homography { h })
    }

    pub fn apply(&self, p: (f64, f64)) -> (f64, f64) {
        let h = &self.h;
        let w = h[6] * p.0 + h[7] * p.1 + h[8];
        ((h[0] * p.0 + h[1] * p.1 + h[2]) / w, (h[3] * p.0 + h[4] * p.1 + h[5]) / w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_the_calibration_points_and_between_them() {
        // A trapezoid in the image (perspective) onto a 10 m × 40 m rectangle of road.
        let img = [(400.0, 300.0), (560.0, 300.0), (900.0, 700.0), (60.0, 700.0)];
        let ground = [(0.0, 40.0), (10.0, 40.0), (10.0, 0.0), (0.0, 0.0)];
        let h = Homography::from_points(img, ground).expect("solvable");
        for (p, q) in img.iter().zip(ground) {
            let m = h.apply(*p);
            assert!((m.0 - q.0).abs() < 1e-6 && (m.1 - q.1).abs() < 1e-6, "{p:?} → {m:?}, expected {q:?}");
        }
        let mid = h.apply((480.0, 700.0));
        assert!((mid.0 - 5.0).abs() < 1e-6 && mid.1.abs() < 1e-6);
        assert!(Homography::from_points([(0.0, 0.0), (1.0, 1.0), (2.0, 2.0), (3.0, 3.0)], ground).is_none());
    }
}
