//! ByteTrack's constant-velocity Kalman filter on `(cx, cy, aspect, height)`.
//!
//! ByteTrack's 8-state filter has a transition that couples each coordinate only with its own
//! velocity, diagonal process/measurement noise and a diagonal initial covariance, so its
//! covariance stays block-diagonal: it is exactly four independent (position, velocity)
//! filters. That is how it is written here — same numbers, no matrix inversion.
//! Time steps are in stream time, in units of 1/25 s (ByteTrack is tuned per frame at ~25 fps).

const STD_POS: f32 = 1.0 / 20.0;
const STD_VEL: f32 = 1.0 / 160.0;
/// Stream seconds per filter time unit.
pub const TIME_UNIT_SECS: f32 = 1.0 / 25.0;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Axis {
    x: f32,
    v: f32,
    p00: f32,
    p01: f32,
    p11: f32,
}

impl Axis {
    fn new(x: f32, std_x: f32, std_v: f32) -> Self {
        Axis { x, v: 0.0, p00: std_x * std_x, p01: 0.0, p11: std_v * std_v }
    }

    fn predict(&mut self, dt: f32, q_pos: f32, q_vel: f32) {
        self.x += self.v * dt;
        // P = F P Fᵀ + Q·dt, F = [[1, dt], [0, 1]]
        let p00 = self.p00 + 2.0 * dt * self.p01 + dt * dt * self.p11;
        let p01 = self.p01 + dt * self.p11;
        self.p00 = p00 + q_pos * dt;
        self.p01 = p01;
        self.p11 += q_vel * dt;
    }

    fn update(&mut self, z: f32, r: f32) {
        let s = self.p00 + r;
        let k0 = self.p00 / s;
        let k1 = self.p01 / s;
        let y = z - self.x;
        self.x += k0 * y;
        self.v += k1 * y;
        let (p00, p01, p11) = (self.p00, self.p01, self.p11);
        self.p00 = (1.0 - k0) * p00;
        self.p01 = (1.0 - k0) * p01;
        self.p11 = p11 - k1 * p01;
    }
}

/// Filter state for one track; measurement is `[cx, cy, w/h, h]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Kalman {
    axes: [Axis; 4],
}

impl Kalman {
    pub fn new(z: [f32; 4]) -> Self {
        let h = z[3];
        let pos = [2.0 * STD_POS * h, 2.0 * STD_POS * h, 1e-2, 2.0 * STD_POS * h];
        let vel = [10.0 * STD_VEL * h, 10.0 * STD_VEL * h, 1e-5, 10.0 * STD_VEL * h];
        Kalman { axes: std::array::from_fn(|i| Axis::new(z[i], pos[i], vel[i])) }
    }

    /// Advances the state by `dt_secs` of stream time.
    pub fn predict(&mut self, dt_secs: f32) {
        let dt = (dt_secs / TIME_UNIT_SECS).max(0.0);
        let h = self.axes[3].x;
        let pos = [STD_POS * h, STD_POS * h, 1e-2, STD_POS * h];
        let vel = [STD_VEL * h, STD_VEL * h, 1e-5, STD_VEL * h];
        for i in 0..4 {
            self.axes[i].predict(dt, pos[i] * pos[i], vel[i] * vel[i]);
        }
    }

    pub fn update(&mut self, z: [f32; 4]) {
        let h = self.axes[3].x;
        let r = [STD_POS * h, STD_POS * h, 1e-1, STD_POS * h];
        for i in 0..4 {
            self.axes[i].update(z[i], r[i] * r[i]);
        }
    }

    /// `[cx, cy, aspect, h]`.
    pub fn state(&self) -> [f32; 4] {
        std::array::from_fn(|i| self.axes[i].x)
    }

    /// Centre velocity in pixels per second of stream time.
    pub fn velocity(&self) -> (f32, f32) {
        (self.axes[0].v / TIME_UNIT_SECS, self.axes[1].v / TIME_UNIT_SECS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_constant_velocity() {
        let mut k = Kalman::new([0.0, 0.0, 0.5, 40.0]);
        for step in 1..=30 {
            k.predict(TIME_UNIT_SECS);
            k.update([step as f32 * 4.0, 0.0, 0.5, 40.0]);
        }
        let (vx, vy) = k.velocity();
        assert!((vx - 100.0).abs() < 5.0, "vx {vx}");
        assert!(vy.abs() < 1.0);
        k.predict(TIME_UNIT_SECS);
        assert!((k.state()[0] - 124.0).abs() < 2.0);
    }
}
