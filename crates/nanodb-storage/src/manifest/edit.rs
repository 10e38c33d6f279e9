//! `VersionEdit`: one atomic change to the set of live files, one manifest record.
//!
//! Encoding: a sequence of tagged fields, each `tag: u8` then its body (varints and
//! length-prefixed byte strings); see docs/format/manifest.md. An unknown tag is corruption:
//! new tags need a new manifest format version (version 2 added tags 6 to 8, version 3
//! tags 9 to 12).
//!
//! Thread safety: plain values.

use crate::coding::{put_length_prefixed, put_varint, Decoder};
use crate::range_del::RangeTombstone;

const TAG_LOG_NUMBER: u8 = 1;
const TAG_NEXT_FILE_NUMBER: u8 = 2;
const TAG_LAST_SEQNO: u8 = 3;
const TAG_ADD_FILE: u8 = 4;
const TAG_REMOVE_FILE: u8 = 5;
const TAG_ADD_RANGE_TOMBSTONE: u8 = 6;
const TAG_REMOVE_RANGE_TOMBSTONE: u8 = 7;
const TAG_FILE_RANGE_DEL_APPLIED: u8 = 8;
const TAG_CREATE_KEYSPACE: u8 = 9;
const TAG_DROP_KEYSPACE: u8 = 10;
const TAG_NEXT_KEYSPACE_ID: u8 = 11;
const TAG_FILE_EXPIRY_MIN: u8 = 12;

/// What the manifest records about one SST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// File number (`NNNNNN.sst`).
    pub number: u64,
    /// Level of the LSM tree the file is in.
    pub level: u32,
    /// File size, in bytes.
    pub size_bytes: u64,
    /// Entries in the file.
    pub entry_count: u64,
    /// Smallest seqno in the file.
    pub seqno_min: u64,
    /// Largest seqno in the file.
    pub seqno_max: u64,
    /// Smallest encoded internal key.
    pub smallest_key: Vec<u8>,
    /// Largest encoded internal key.
    pub largest_key: Vec<u8>,
    /// Every range tombstone with a seqno up to this one was applied when the file was
    /// written: the file holds no version such a tombstone hides (0: none was).
    pub range_del_applied_seqno: u64,
    /// The earliest expiry of an expiring version in the file, ms since the Unix epoch (0:
    /// none), for the expiry sweep.
    pub expiry_min: u64,
}

/// One change to the live file set and counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionEdit {
    /// WAL files numbered below this are no longer needed.
    pub log_number: Option<u64>,
    /// The next unused file number.
    pub next_file_number: Option<u64>,
    /// Every seqno up to this one is in an SST.
    pub last_seqno: Option<u64>,
    /// Files added.
    pub added: Vec<FileMeta>,
    /// Files removed, as (level, number).
    pub removed: Vec<(u32, u64)>,
    /// Range tombstones that became durable (their memtable was flushed).
    pub added_range_tombstones: Vec<RangeTombstone>,
    /// Range tombstones no longer needed, by seqno.
    pub removed_range_tombstones: Vec<u64>,
    /// Keyspaces created, as (id, name).
    pub created_keyspaces: Vec<(u32, String)>,
    /// Keyspaces dropped, by id.
    pub dropped_keyspaces: Vec<u32>,
    /// The next unused keyspace id.
    pub next_keyspace_id: Option<u32>,
}

impl VersionEdit {
    /// Encodes the edit as a manifest record payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (tag, value) in [
            (TAG_LOG_NUMBER, self.log_number),
            (TAG_NEXT_FILE_NUMBER, self.next_file_number),
            (TAG_LAST_SEQNO, self.last_seqno),
        ] {
            if let Some(value) = value {
                out.push(tag);
                put_varint(&mut out, value);
            }
        }
        for &(level, number) in &self.removed {
            out.push(TAG_REMOVE_FILE);
            put_varint(&mut out, u64::from(level));
            put_varint(&mut out, number);
        }
        for file in &self.added {
            out.push(TAG_ADD_FILE);
            put_varint(&mut out, u64::from(file.level));
            for value in
                [file.number, file.size_bytes, file.entry_count, file.seqno_min, file.seqno_max]
            {
                put_varint(&mut out, value);
            }
            put_length_prefixed(&mut out, &file.smallest_key);
            put_length_prefixed(&mut out, &file.largest_key);
            if file.range_del_applied_seqno > 0 {
                out.push(TAG_FILE_RANGE_DEL_APPLIED);
                put_varint(&mut out, file.range_del_applied_seqno);
            }
            if file.expiry_min > 0 {
                out.push(TAG_FILE_EXPIRY_MIN);
                put_varint(&mut out, file.expiry_min);
            }
        }
        for tombstone in &self.added_range_tombstones {
            out.push(TAG_ADD_RANGE_TOMBSTONE);
            put_varint(&mut out, tombstone.seqno);
            put_length_prefixed(&mut out, &tombstone.start);
            put_length_prefixed(&mut out, &tombstone.end);
        }
        for &seqno in &self.removed_range_tombstones {
            out.push(TAG_REMOVE_RANGE_TOMBSTONE);
            put_varint(&mut out, seqno);
        }
        for (id, name) in &self.created_keyspaces {
            out.push(TAG_CREATE_KEYSPACE);
            put_varint(&mut out, u64::from(*id));
            put_length_prefixed(&mut out, name.as_bytes());
        }
        for &id in &self.dropped_keyspaces {
            out.push(TAG_DROP_KEYSPACE);
            put_varint(&mut out, u64::from(id));
        }
        if let Some(id) = self.next_keyspace_id {
            out.push(TAG_NEXT_KEYSPACE_ID);
            put_varint(&mut out, u64::from(id));
        }
        out
    }

    /// Decodes a manifest record payload; `Err` says what is malformed.
    pub fn decode(bytes: &[u8]) -> Result<VersionEdit, &'static str> {
        let mut decoder = Decoder::new(bytes);
        let mut edit = VersionEdit::default();
        while let Some(tag) = decoder.u8() {
            match tag {
                TAG_LOG_NUMBER => edit.log_number = Some(decoder.varint().ok_or("bad log number")?),
                TAG_NEXT_FILE_NUMBER => {
                    edit.next_file_number = Some(decoder.varint().ok_or("bad next file number")?)
                }
                TAG_LAST_SEQNO => edit.last_seqno = Some(decoder.varint().ok_or("bad last seqno")?),
                TAG_REMOVE_FILE => {
                    let level = decode_level(&mut decoder)?;
                    let number = decoder.varint().ok_or("bad removed file number")?;
                    edit.removed.push((level, number));
                }
                TAG_ADD_FILE => edit.added.push(decode_file(&mut decoder)?),
                TAG_FILE_RANGE_DEL_APPLIED => {
                    let seqno = decoder.varint().ok_or("bad range deletion seqno of a file")?;
                    let file = edit.added.last_mut().ok_or("range deletion seqno before a file")?;
                    file.range_del_applied_seqno = seqno;
                }
                TAG_FILE_EXPIRY_MIN => {
                    let expiry = decoder.varint().ok_or("bad earliest expiry of a file")?;
                    let file = edit.added.last_mut().ok_or("earliest expiry before a file")?;
                    file.expiry_min = expiry;
                }
                TAG_ADD_RANGE_TOMBSTONE => {
                    let seqno = decoder.varint().ok_or("bad range tombstone seqno")?;
                    let start = decoder.length_prefixed().ok_or("bad range tombstone start")?;
                    let end = decoder.length_prefixed().ok_or("bad range tombstone end")?;
                    if start >= end {
                        return Err("range tombstone does not start before its end");
                    }
                    edit.added_range_tombstones.push(RangeTombstone {
                        start: start.to_vec(),
                        end: end.to_vec(),
                        seqno,
                    });
                }
                TAG_REMOVE_RANGE_TOMBSTONE => edit
                    .removed_range_tombstones
                    .push(decoder.varint().ok_or("bad removed range tombstone seqno")?),
                TAG_CREATE_KEYSPACE => {
                    let id = decode_keyspace_id(&mut decoder)?;
                    let name = decoder.length_prefixed().ok_or("bad keyspace name")?;
                    let name = std::str::from_utf8(name).map_err(|_| "keyspace name not UTF-8")?;
                    edit.created_keyspaces.push((id, name.to_string()));
                }
                TAG_DROP_KEYSPACE => edit.dropped_keyspaces.push(decode_keyspace_id(&mut decoder)?),
                TAG_NEXT_KEYSPACE_ID => {
                    edit.next_keyspace_id = Some(decode_keyspace_id(&mut decoder)?)
                }
                _ => return Err("unknown version edit tag"),
            }
        }
        Ok(edit)
    }
}

fn decode_level(decoder: &mut Decoder<'_>) -> Result<u32, &'static str> {
    let level = decoder.varint().ok_or("bad level")?;
    u32::try_from(level).map_err(|_| "level out of range")
}

fn decode_keyspace_id(decoder: &mut Decoder<'_>) -> Result<u32, &'static str> {
    let id = decoder.varint().ok_or("bad keyspace id")?;
    u32::try_from(id).map_err(|_| "keyspace id out of range")
}

fn decode_file(decoder: &mut Decoder<'_>) -> Result<FileMeta, &'static str> {
    let level = decode_level(decoder)?;
    let mut numbers = [0u64; 5];
    for slot in &mut numbers {
        *slot = decoder.varint().ok_or("bad added file field")?;
    }
    let smallest_key = decoder.length_prefixed().ok_or("bad smallest key")?.to_vec();
    let largest_key = decoder.length_prefixed().ok_or("bad largest key")?.to_vec();
    let [number, size_bytes, entry_count, seqno_min, seqno_max] = numbers;
    Ok(FileMeta {
        number,
        level,
        size_bytes,
        entry_count,
        seqno_min,
        seqno_max,
        smallest_key,
        largest_key,
        range_del_applied_seqno: 0,
        expiry_min: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::internal_key;

    fn sample() -> VersionEdit {
        VersionEdit {
            log_number: Some(12),
            next_file_number: Some(40),
            last_seqno: Some(1 << 40),
            added: vec![FileMeta {
                number: 13,
                level: 0,
                size_bytes: 4096,
                entry_count: 100,
                seqno_min: 1,
                seqno_max: 100,
                smallest_key: internal_key(b"a", 1, 1),
                largest_key: internal_key(b"z", 100, 1),
                range_del_applied_seqno: 77,
                expiry_min: 1_700_000_000_000,
            }],
            removed: vec![(1, 9)],
            added_range_tombstones: vec![RangeTombstone {
                start: b"b".to_vec(),
                end: b"d".to_vec(),
                seqno: 50,
            }],
            removed_range_tombstones: vec![3],
            created_keyspaces: vec![(4, "users".into())],
            dropped_keyspaces: vec![2],
            next_keyspace_id: Some(5),
        }
    }

    #[test]
    fn edits_round_trip() {
        let edit = sample();
        assert_eq!(VersionEdit::decode(&edit.encode()).unwrap(), edit);
        assert_eq!(VersionEdit::decode(&[]).unwrap(), VersionEdit::default());
    }

    #[test]
    fn every_truncation_and_unknown_tags_are_errors() {
        let encoded = sample().encode();
        // Truncations that cut inside a field fail; ones that end between fields decode
        // to a shorter edit, which the record checksum prevents from ever being read.
        for len in 0..encoded.len() {
            let _ = VersionEdit::decode(&encoded[..len]);
        }
        assert!(VersionEdit::decode(&[99]).is_err());
        assert!(VersionEdit::decode(&[TAG_ADD_FILE, 0]).is_err());
        assert!(VersionEdit::decode(&[TAG_FILE_RANGE_DEL_APPLIED, 5]).is_err());
        // An empty or inverted range is corruption.
        assert!(VersionEdit::decode(&[TAG_ADD_RANGE_TOMBSTONE, 5, 1, b'b', 1, b'a']).is_err());
        assert!(VersionEdit::decode(&[TAG_ADD_RANGE_TOMBSTONE, 5, 1, b'a', 1, b'a']).is_err());
        assert!(VersionEdit::decode(&[TAG_ADD_RANGE_TOMBSTONE, 5, 1, b'a', 1, b'b']).is_ok());
        // Keyspace names are UTF-8 and ids fit in 32 bits.
        assert!(VersionEdit::decode(&[TAG_CREATE_KEYSPACE, 1, 1, 0xff]).is_err());
        let mut too_big = vec![TAG_DROP_KEYSPACE];
        put_varint(&mut too_big, u64::from(u32::MAX) + 1);
        assert!(VersionEdit::decode(&too_big).is_err());
    }
}
