//! What the simulations share: a seeded RNG and ensemble configurations.

use zab::QuorumConfig;

/// splitmix64: small, deterministic, good enough for fault schedules.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// True with probability `per_mille`/1000.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// `n` participants on loopback ports (never opened: the network is simulated).
// Each test binary compiles this module; zab_sim uses the observer form.
#[allow(dead_code)]
pub fn config(n: u64) -> QuorumConfig {
    config_with_observers(n, 0)
}

/// `n` participants, then `obs` observers.
pub fn config_with_observers(n: u64, obs: u64) -> QuorumConfig {
    let lines: Vec<String> = (1..=n + obs)
        .map(|i| {
            let kind = if i > n { ":observer" } else { "" };
            format!("server.{i}=127.0.0.1:{}:{}{kind}", 2000 + i, 3000 + i)
        })
        .collect();
    QuorumConfig::parse(&lines.join("\n")).unwrap()
}
