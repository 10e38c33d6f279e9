//! The documents of the document workloads: a deterministic generator, so every engine stores,
//! reads and queries exactly the same data.
//!
//! Document `i` depends only on the seed and `i`: it has 12 fields (the id, strings, ints, a
//! float, a bool, a nested object two levels deep, a small array), about 400 bytes as JSON. Ids
//! are 16 hex digits of a bijective hash of `i`, so they are unique and arrive in random key
//! order, like generated ids. `city` and `team` each take one of `DISTINCT_VALUES` values,
//! independently: the indexed and the unindexed filter select the same share of documents.
//!
//! Thread safety: `Generator` is plain data (`Copy`); every method is pure.
//!
//! Invariant: `Generator::doc(i).id == Generator::id(i)`, and the `city`/`team` of document `i`
//! are `value_of(i, field)`, which `value_counts` tallies without building documents.

use serde::{Deserialize, Serialize};

/// Distinct values of the `city` (indexed) and `team` (unindexed) fields.
pub const DISTINCT_VALUES: u64 = 1000;
/// The field with an index on every engine.
pub const INDEXED_FIELD: &str = "city";
/// The field without an index, with the same number of distinct values.
pub const UNINDEXED_FIELD: &str = "team";
/// Seed of the generator in every run.
pub const SEED: u64 = 0x6e61_6e6f_6462_0006;

const FIRST_NAMES: &[&str] = &[
    "ada", "alan", "grace", "edsger", "barbara", "donald", "frances", "ken", "dennis", "margaret",
    "john", "radia", "leslie", "sophie", "tim", "linus",
];
const LAST_NAMES: &[&str] = &[
    "lovelace", "turing", "hopper", "dijkstra", "liskov", "knuth", "allen", "thompson", "ritchie",
    "hamilton", "backus", "perlman", "lamport", "wilson", "berners", "torvalds",
];
const WORDS: &[&str] = &[
    "storage",
    "engine",
    "document",
    "query",
    "index",
    "latency",
    "throughput",
    "compaction",
    "memtable",
    "snapshot",
    "replica",
    "cursor",
    "schema",
    "field",
    "value",
    "bloom",
    "filter",
    "level",
    "block",
    "cache",
    "page",
    "journal",
    "commit",
    "batch",
    "scan",
    "range",
    "merge",
    "tree",
    "table",
    "record",
    "write",
    "read",
];
const TAGS: &[&str] =
    &["red", "green", "blue", "admin", "staff", "guest", "beta", "vip", "eu", "us", "asia", "new"];

/// A point on the map, the innermost object of `Address`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Geo {
    pub lat: f64,
    pub lon: f64,
}

/// The nested object of a document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Address {
    pub street: String,
    pub zip: i64,
    pub geo: Geo,
}

/// One generated document, engine-neutral; each engine builds its own form from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Doc {
    pub id: String,
    pub name: String,
    pub email: String,
    pub age: i64,
    pub score: f64,
    pub active: bool,
    pub city: String,
    pub team: String,
    pub counter: i64,
    pub address: Address,
    pub tags: Vec<String>,
    pub bio: String,
}

/// splitmix64's finalizer: a bijection on u64 that scatters consecutive inputs.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The text of value `value` (below `DISTINCT_VALUES`) of `field`: `city-0042`.
pub fn value_text(field: &str, value: u64) -> String {
    format!("{field}-{value:04}")
}

/// Builds the documents of one seed.
#[derive(Debug, Clone, Copy)]
pub struct Generator {
    seed: u64,
}

impl Generator {
    pub fn new(seed: u64) -> Generator {
        Generator { seed }
    }

    fn hash(&self, index: u64, salt: u64) -> u64 {
        mix(mix(index ^ self.seed) ^ salt)
    }

    /// The id of document `index`: unique for every index.
    pub fn id(&self, index: u64) -> String {
        format!("{:016x}", mix(index ^ self.seed))
    }

    /// Which of the `DISTINCT_VALUES` values `field` (`city` or `team`) has in document `index`.
    pub fn value_of(&self, index: u64, field: &str) -> u64 {
        let salt = if field == INDEXED_FIELD { 0xc1 } else { 0x7e };
        self.hash(index, salt) % DISTINCT_VALUES
    }

    /// How many of documents `0..docs` have each value of `field`.
    pub fn value_counts(&self, docs: u64, field: &str) -> Vec<u64> {
        let mut counts = vec![0; DISTINCT_VALUES as usize];
        for index in 0..docs {
            counts[self.value_of(index, field) as usize] += 1;
        }
        counts
    }

    /// Document `index`.
    pub fn doc(&self, index: u64) -> Doc {
        let mut rng = crate::keys::Rng::new(self.hash(index, 0x5eed));
        let mut pick = |list: &[&'static str]| list[rng.below(list.len() as u64) as usize];
        let (first, last) = (pick(FIRST_NAMES), pick(LAST_NAMES));
        let street = format!("{} {} street", 1 + index % 400, pick(LAST_NAMES));
        let tags = (0..1 + index % 3).map(|_| pick(TAGS).to_string()).collect();
        let bio = (0..8 + index % 9).map(|_| pick(WORDS)).collect::<Vec<_>>().join(" ");
        let age = 18 + rng.below(73) as i64;
        let score = rng.unit() * 100.0;
        let active = rng.below(2) == 1;
        let zip = 10_000 + rng.below(90_000) as i64;
        let geo = Geo { lat: rng.unit() * 180.0 - 90.0, lon: rng.unit() * 360.0 - 180.0 };
        Doc {
            id: self.id(index),
            name: format!("{first} {last}"),
            email: format!("{first}.{last}{}@example.com", index % 10_000),
            age,
            score,
            active,
            city: value_text(INDEXED_FIELD, self.value_of(index, INDEXED_FIELD)),
            team: value_text(UNINDEXED_FIELD, self.value_of(index, UNINDEXED_FIELD)),
            counter: 0,
            address: Address { street, zip, geo },
            tags,
            bio,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_deterministic_and_ids_unique() {
        let generator = Generator::new(SEED);
        assert_eq!(generator.doc(7), generator.doc(7));
        assert_ne!(generator.doc(7), generator.doc(8));
        let ids: std::collections::HashSet<String> = (0..10_000).map(|i| generator.id(i)).collect();
        assert_eq!(ids.len(), 10_000);
        assert_eq!(generator.doc(3).id, generator.id(3));
        let json = serde_json::to_string(&generator.doc(5)).unwrap();
        assert!((250..600).contains(&json.len()), "{} bytes: {json}", json.len());
    }

    #[test]
    fn filter_fields_have_the_same_selectivity() {
        let generator = Generator::new(SEED);
        let docs = 200_000;
        for field in [INDEXED_FIELD, UNINDEXED_FIELD] {
            let counts = generator.value_counts(docs, field);
            assert_eq!(counts.iter().sum::<u64>(), docs);
            assert!(counts.iter().all(|&c| (120..280).contains(&c)), "{field}: {counts:?}");
            let doc = generator.doc(11);
            let text = if field == INDEXED_FIELD { doc.city } else { doc.team };
            assert_eq!(text, value_text(field, generator.value_of(11, field)));
        }
    }
}
