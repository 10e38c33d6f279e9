//! Command-line flags of `nanodb-bench docs`, `docs-worker` and `docs-report`.
//!
//! ```text
//! nanodb-bench docs [--docs N] [--repeats N] [--engines nanodb,sqlite,polodb] [--dir PATH]
//!                   [--results FILE] [--rss-max-gib N] [--insert-one-docs N] [--batch N]
//!                   [--gets N] [--get-threads N] [--queries N] [--scan-queries N]
//!                   [--updates N] [--deletes N]
//! nanodb-bench docs-report FILE
//! ```
//!
//! Engines: `nanodb`, `sqlite`, `polodb` (those compiled in run by default), and
//! `nanodb-mmap`, `sqlite-mmap` (the same two reading through memory maps) when named.
//!
//! Sizes not given follow `--docs` (default 1,000,000): `insert-one` inserts up to 100,000
//! documents, `get` does up to 1,000,000 lookups, `update` and `delete` a tenth of the
//! documents up to 100,000; 200 indexed and 5 unindexed queries; batches of 1,000.
//! `get-parallel` shares `--gets` among `--get-threads` threads (default: the cores this
//! process may use, at most `parallel::GET_THREADS_MAX`; 0 or 1 skips it).
//!
//! Thread safety: plain data. Invariant: a parsed `DocArgs` has every size resolved and within
//! its limits, so workers get explicit sizes and never recompute defaults.

use super::engine;
use super::parallel::GET_THREADS_MAX;
use super::workload::Sizes;
use std::path::PathBuf;

/// Most documents in one `insert-batch` transaction (nanodb's `MANY_DOCUMENTS_MAX`).
pub const BATCH_MAX: u64 = nanodb::MANY_DOCUMENTS_MAX as u64;
/// The largest `--rss-max-gib` accepted.
const RSS_MAX_GIB_LIMIT: u64 = 1024;

#[derive(Debug, Clone)]
pub struct DocArgs {
    pub engines: Vec<String>,
    pub repeats: u32,
    pub sizes: Sizes,
    /// Where workers create their engines' directories.
    pub dir: PathBuf,
    /// `docs`: the results file to write; `docs-report`: the one to read.
    pub results: Option<PathBuf>,
    pub rss_max_bytes: u64,
}

fn number(flag: &str, text: Option<String>) -> Result<u64, String> {
    let text = text.ok_or(format!("{flag} needs a value"))?;
    text.replace('_', "").parse::<u64>().map_err(|e| format!("{flag} {text}: {e}"))
}

/// Parses the flags after the command word.
pub fn parse(command: &str, mut raw: impl Iterator<Item = String>) -> Result<DocArgs, String> {
    let mut args = DocArgs {
        engines: engine::default_engines().iter().map(|s| s.to_string()).collect(),
        repeats: 3,
        sizes: Sizes {
            docs: 1_000_000,
            insert_one_docs: 0,
            batch: 1000,
            gets: 0,
            get_threads: 0,
            indexed_queries: 200,
            unindexed_queries: 5,
            updates: 0,
            deletes: 0,
        },
        dir: std::env::temp_dir().join("nanodb-bench-docs"),
        results: None,
        rss_max_bytes: 16 << 30,
    };
    let (mut insert_one, mut gets, mut updates, mut deletes) = (None, None, None, None);
    let mut get_threads = None;
    while let Some(flag) = raw.next() {
        let s = &mut args.sizes;
        match flag.as_str() {
            "--engines" | "--engine" => {
                let list = raw.next().ok_or("--engines needs a value")?;
                args.engines = list.split(',').map(str::to_string).collect();
            }
            "--repeats" => {
                args.repeats =
                    u32::try_from(number(&flag, raw.next())?).map_err(|e| e.to_string())?
            }
            "--docs" => s.docs = number(&flag, raw.next())?,
            "--insert-one-docs" => insert_one = Some(number(&flag, raw.next())?),
            "--batch" => s.batch = number(&flag, raw.next())?,
            "--gets" => gets = Some(number(&flag, raw.next())?),
            "--get-threads" => get_threads = Some(number(&flag, raw.next())?),
            "--queries" => s.indexed_queries = number(&flag, raw.next())?,
            "--scan-queries" => s.unindexed_queries = number(&flag, raw.next())?,
            "--updates" => updates = Some(number(&flag, raw.next())?),
            "--deletes" => deletes = Some(number(&flag, raw.next())?),
            "--dir" => args.dir = raw.next().ok_or("--dir needs a value")?.into(),
            "--results" => args.results = Some(raw.next().ok_or("--results needs a value")?.into()),
            "--rss-max-gib" => {
                let gib = number(&flag, raw.next())?;
                if !(1..=RSS_MAX_GIB_LIMIT).contains(&gib) {
                    return Err(format!("--rss-max-gib must be 1 to {RSS_MAX_GIB_LIMIT}"));
                }
                args.rss_max_bytes = gib << 30;
            }
            other if !other.starts_with("--") && command == "docs-report" => {
                args.results = Some(other.into())
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    let s = &mut args.sizes;
    if s.docs == 0 {
        return Err("--docs must be at least 1".into());
    }
    if !(1..=BATCH_MAX).contains(&s.batch) {
        return Err(format!("--batch must be 1 to {BATCH_MAX}"));
    }
    let tenth = (s.docs / 10).clamp(1, 100_000);
    s.insert_one_docs = insert_one.unwrap_or(s.docs.min(100_000));
    s.gets = gets.unwrap_or(s.docs.min(1_000_000));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    s.get_threads = get_threads.unwrap_or(cores.min(GET_THREADS_MAX));
    if s.get_threads > GET_THREADS_MAX {
        return Err(format!("--get-threads must be at most {GET_THREADS_MAX}"));
    }
    s.updates = updates.unwrap_or(tenth);
    s.deletes = deletes.unwrap_or(tenth);
    if s.deletes > s.docs {
        return Err(format!("--deletes {} is more than --docs {}", s.deletes, s.docs));
    }
    if args.repeats == 0 || args.engines.is_empty() {
        return Err("need at least one repeat and one engine".into());
    }
    Ok(args)
}

/// The flags that make a worker run exactly `sizes`.
pub fn size_flags(sizes: &Sizes) -> Vec<String> {
    let pairs = [
        ("--docs", sizes.docs),
        ("--insert-one-docs", sizes.insert_one_docs),
        ("--batch", sizes.batch),
        ("--gets", sizes.gets),
        ("--get-threads", sizes.get_threads),
        ("--queries", sizes.indexed_queries),
        ("--scan-queries", sizes.unindexed_queries),
        ("--updates", sizes.updates),
        ("--deletes", sizes.deletes),
    ];
    pairs.iter().flat_map(|(flag, value)| [flag.to_string(), value.to_string()]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_flags(flags: &[&str]) -> Result<DocArgs, String> {
        parse("docs", flags.iter().map(|s| s.to_string()))
    }

    #[test]
    fn sizes_follow_docs_and_round_trip_through_worker_flags() {
        let args = parse_flags(&["--docs", "2_000"]).unwrap();
        let s = args.sizes;
        assert_eq!(
            (s.docs, s.insert_one_docs, s.gets, s.updates, s.deletes),
            (2000, 2000, 2000, 200, 200)
        );
        let big = parse_flags(&["--docs", "1000000"]).unwrap().sizes;
        assert_eq!((big.insert_one_docs, big.gets, big.updates), (100_000, 1_000_000, 100_000));
        let flags = size_flags(&s);
        let again = parse("docs-worker", flags.into_iter()).unwrap();
        assert_eq!(again.sizes, s);
        let cores = std::thread::available_parallelism().unwrap().get() as u64;
        assert_eq!(s.get_threads, cores.min(GET_THREADS_MAX));
    }

    #[test]
    fn get_threads_are_capped_at_the_limit() {
        let limit = GET_THREADS_MAX.to_string();
        let at = parse_flags(&["--get-threads", &limit]).unwrap().sizes;
        assert_eq!(at.get_threads, GET_THREADS_MAX);
        let past = (GET_THREADS_MAX + 1).to_string();
        assert!(parse_flags(&["--get-threads", &past]).is_err());
        assert_eq!(parse_flags(&["--get-threads", "0"]).unwrap().sizes.get_threads, 0);
    }

    #[test]
    fn bad_flags_are_refused() {
        for bad in [
            &["--docs", "0"][..],
            &["--docs", "x"],
            &["--docs"],
            &["--batch", "0"],
            &["--batch", "100001"],
            &["--docs", "10", "--deletes", "11"],
            &["--rss-max-gib", "0"],
            &["--repeats", "0"],
            &["--frobnicate"],
        ] {
            assert!(parse_flags(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
