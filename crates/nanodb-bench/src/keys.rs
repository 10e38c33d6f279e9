//! Keys, values and the random choices of the workloads: deterministic, so every engine sees
//! the same sequence of operations.
//!
//! Keys are `key_size` bytes: the decimal index, zero-padded (the db_bench convention).
//! Missing keys use indexes at and past the key count. YCSB picks keys with a scrambled
//! zipfian distribution (theta 0.99), as YCSB's own generator does.

/// A small, fast, seedable generator (xorshift64*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound.max(1))) >> 64) as u64
    }

    /// Uniform in `0.0..1.0`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Builds keys and values of fixed sizes.
#[derive(Debug, Clone)]
pub struct KeySpace {
    pub key_size: usize,
    pub value_size: usize,
    values: Vec<u8>,
}

impl KeySpace {
    pub fn new(key_size: usize, value_size: usize) -> KeySpace {
        let mut rng = Rng::new(42);
        // Random bytes, so values do not compress (compression is off everywhere anyway).
        let values = (0..value_size + 4096).map(|_| rng.next_u64() as u8).collect();
        KeySpace { key_size: key_size.max(8), value_size, values }
    }

    pub fn key(&self, index: u64) -> Vec<u8> {
        let digits = format!("{index:0width$}", width = self.key_size);
        digits.as_bytes()[digits.len() - self.key_size..].to_vec()
    }

    /// A value that differs from key to key (and from version to version, by `salt`).
    pub fn value(&self, index: u64, salt: u64) -> &[u8] {
        let offset = (index.wrapping_mul(31).wrapping_add(salt) % 4096) as usize;
        &self.values[offset..offset + self.value_size]
    }
}

/// Rounds of the mixing bijection `Permutation` applies.
const PERMUTATION_ROUNDS: usize = 4;

/// A shuffled order of `0..count`, computed on demand rather than stored, so the harness's own
/// memory does not show in the engines' peak resident memory (10M keys would be 80 MB).
///
/// A keyed bijection on `0..2^bits` (the smallest power of two at least `count`): rounds of
/// multiplication by an odd number, a xor-shift right and the addition of a key, each
/// invertible modulo `2^bits`; values at or past `count` are mapped again (cycle walking), which
/// keeps it a bijection on `0..count` and takes fewer than two steps on average.
#[derive(Debug, Clone)]
pub struct Permutation {
    count: u64,
    /// Half the domain's bits, rounded up: the xor-shift of each round.
    shift: u32,
    mask: u64,
    keys: [(u64, u64); PERMUTATION_ROUNDS],
}

impl Permutation {
    pub fn new(count: u64, seed: u64) -> Permutation {
        let bits = (64 - count.saturating_sub(1).leading_zeros()).max(1);
        let mask = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
        let mut rng = Rng::new(seed);
        let keys = std::array::from_fn(|_| (rng.next_u64() | 1, rng.next_u64()));
        Permutation { count, shift: bits.div_ceil(2), mask, keys }
    }

    /// The element at `index` (`index < count`).
    pub fn at(&self, index: u64) -> u64 {
        debug_assert!(index < self.count);
        let mut value = index;
        loop {
            value = self.mix(value);
            if value < self.count {
                return value;
            }
        }
    }

    fn mix(&self, mut value: u64) -> u64 {
        for (multiplier, addend) in self.keys {
            value = value.wrapping_mul(multiplier) & self.mask;
            value ^= value >> self.shift;
            value = value.wrapping_add(addend) & self.mask;
        }
        value
    }
}

/// YCSB's zipfian generator over `0..items` (Gray et al.), scrambled with a hash so hot keys
/// are spread over the key space.
#[derive(Debug, Clone)]
pub struct Zipfian {
    items: u64,
    theta: f64,
    alpha: f64,
    zeta_n: f64,
    eta: f64,
}

impl Zipfian {
    pub const THETA: f64 = 0.99;

    pub fn new(items: u64) -> Zipfian {
        let theta = Zipfian::THETA;
        let zeta = |n: u64| (1..=n).map(|i| 1.0 / (i as f64).powf(theta)).sum::<f64>();
        let zeta_n = zeta(items);
        let zeta_2 = zeta(2);
        let alpha = 1.0 / (1.0 - theta);
        let eta = (1.0 - (2.0 / items as f64).powf(1.0 - theta)) / (1.0 - zeta_2 / zeta_n);
        Zipfian { items, theta, alpha, zeta_n, eta }
    }

    /// A rank (0 = most popular) with zipfian probability.
    fn rank(&self, rng: &mut Rng) -> u64 {
        let u = rng.unit();
        let uz = u * self.zeta_n;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1;
        }
        let rank = (self.items as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        rank.min(self.items - 1)
    }

    /// A key index: a zipfian rank scrambled over `0..items`.
    pub fn next(&self, rng: &mut Rng) -> u64 {
        let rank = self.rank(rng);
        fnv1a(rank) % self.items
    }
}

fn fnv1a(value: u64) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for byte in value.to_le_bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_requested_size_and_order() {
        let keys = KeySpace::new(16, 100);
        assert_eq!(keys.key(7), b"0000000000000007");
        assert!(keys.key(9) < keys.key(10));
        assert_eq!(keys.value(3, 0).len(), 100);
    }

    #[test]
    fn permutation_is_a_permutation() {
        for count in [1u64, 2, 3, 1000, 1024, 1025, 65_537] {
            let permutation = Permutation::new(count, 1);
            let mut order: Vec<u64> = (0..count).map(|index| permutation.at(index)).collect();
            order.sort_unstable();
            assert_eq!(order, (0..count).collect::<Vec<_>>(), "count {count}");
        }
    }

    #[test]
    fn permutation_is_shuffled_and_seeded() {
        let count = 100_000;
        let (first, second) = (Permutation::new(count, 1), Permutation::new(count, 2));
        let runs = (0..count - 1).filter(|&i| first.at(i + 1) == first.at(i) + 1).count();
        let ascending = (0..count - 1).filter(|&i| first.at(i + 1) > first.at(i)).count();
        let same = (0..count).filter(|&i| first.at(i) == second.at(i)).count();
        assert!(runs < 100, "{runs} consecutive pairs");
        assert!((45_000..55_000).contains(&ascending), "{ascending} ascending pairs");
        assert!(same < 100, "seeds 1 and 2 agree at {same} positions");
    }

    #[test]
    fn zipfian_is_skewed_and_in_range() {
        let zipfian = Zipfian::new(10_000);
        let mut rng = Rng::new(3);
        let mut counts = std::collections::HashMap::new();
        for _ in 0..100_000 {
            let index = zipfian.next(&mut rng);
            assert!(index < 10_000);
            *counts.entry(index).or_insert(0u32) += 1;
        }
        let hottest = counts.values().max().copied().unwrap_or(0);
        // The most popular key gets far more than the uniform 10 hits.
        assert!(hottest > 1000, "hottest key drew {hottest}");
    }
}
