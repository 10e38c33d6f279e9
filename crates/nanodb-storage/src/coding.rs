//! Little-endian fixed-width integers, LEB128 varints and a bounds-checked decoder.
//!
//! Every on-disk format in this crate is built from these pieces (see docs/format/).
//!
//! Thread safety: plain functions and a borrowed cursor; nothing shared.
//!
//! Invariants:
//! 1. `Decoder` never reads past its slice and never panics on any input: every read returns
//!    `None` when the bytes run out or a varint is malformed, and the caller turns that into
//!    a `Corruption` error naming the file.
//! 2. Integers are little-endian on disk, whatever the host.

/// Longest encoding of a `u64` varint, in bytes.
pub const VARINT_U64_LEN_MAX: usize = 10;

/// Appends `value` as a LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// `value` as a LEB128 varint in a stack buffer: the buffer and how many of its bytes are used
/// (the same bytes as `put_varint`, for a caller that frames them before it can append them;
/// `put_varint` keeps its own push loop, being on the block builder's hot path).
pub fn varint_bytes(mut value: u64) -> ([u8; VARINT_U64_LEN_MAX], usize) {
    let mut bytes = [0u8; VARINT_U64_LEN_MAX];
    let mut len = 0;
    while value >= 0x80 {
        bytes[len] = (value as u8) | 0x80;
        value >>= 7;
        len += 1;
    }
    bytes[len] = value as u8;
    (bytes, len + 1)
}

/// Number of bytes `put_varint` uses for `value`.
pub const fn varint_len(mut value: u64) -> usize {
    let mut len = 1;
    while value >= 0x80 {
        value >>= 7;
        len += 1;
    }
    len
}

/// Appends a varint length followed by the bytes.
pub fn put_length_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Appends a little-endian `u32`.
pub fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

/// Appends a little-endian `u64`.
pub fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

/// Reads a little-endian `u16` at `offset`, or `None` if the slice is too short.
pub fn get_u16_at(bytes: &[u8], offset: usize) -> Option<u16> {
    let raw = bytes.get(offset..offset.checked_add(2)?)?;
    Some(u16::from_le_bytes(raw.try_into().ok()?))
}

/// Reads a little-endian `u32` at `offset`, or `None` if the slice is too short.
pub fn get_u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    let raw = bytes.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_le_bytes(raw.try_into().ok()?))
}

/// Reads a little-endian `u64` at `offset`, or `None` if the slice is too short.
pub fn get_u64_at(bytes: &[u8], offset: usize) -> Option<u64> {
    let raw = bytes.get(offset..offset.checked_add(8)?)?;
    Some(u64::from_le_bytes(raw.try_into().ok()?))
}

/// A forward cursor over untrusted bytes.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Decoder<'a> {
    /// Starts decoding at the beginning of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Decoder<'a> {
        Decoder { bytes, position: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.position
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }

    /// True when every byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Reads `len` raw bytes.
    pub fn bytes(&mut self, len: usize) -> Option<&'a [u8]> {
        let end = self.position.checked_add(len)?;
        let slice = self.bytes.get(self.position..end)?;
        self.position = end;
        Some(slice)
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Option<u8> {
        let byte = *self.bytes.get(self.position)?;
        self.position += 1;
        Some(byte)
    }

    /// Reads a little-endian `u32`.
    pub fn u32(&mut self) -> Option<u32> {
        let value = get_u32_at(self.bytes, self.position)?;
        self.position += 4;
        Some(value)
    }

    /// Reads a little-endian `u64`.
    pub fn u64(&mut self) -> Option<u64> {
        let value = get_u64_at(self.bytes, self.position)?;
        self.position += 8;
        Some(value)
    }

    /// Reads a LEB128 varint; `None` if truncated or longer than ten bytes or overflowing.
    pub fn varint(&mut self) -> Option<u64> {
        let mut value: u64 = 0;
        for index in 0..VARINT_U64_LEN_MAX {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7f);
            let shift = 7 * index as u32;
            if index == VARINT_U64_LEN_MAX - 1 && byte > 1 {
                return None; // more than 64 bits
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    /// Reads a varint that must fit in `usize` and in the remaining bytes (used for lengths).
    pub fn length(&mut self) -> Option<usize> {
        let value = usize::try_from(self.varint()?).ok()?;
        (value <= self.remaining()).then_some(value)
    }

    /// Reads a varint length followed by that many bytes.
    pub fn length_prefixed(&mut self) -> Option<&'a [u8]> {
        let len = self.length()?;
        self.bytes(len)
    }
}

/// CRC32C (Castagnoli) of `bytes`, the checksum of every on-disk record and block.
pub fn crc32c(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes)
}

/// CRC32C of the concatenation of two slices, without copying them.
pub fn crc32c_two(first: &[u8], second: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(first), second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trips_at_every_width() {
        let values = [0, 1, 127, 128, 16_383, 16_384, u32::MAX as u64, u64::MAX - 1, u64::MAX];
        for value in values {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(out.len(), varint_len(value), "value {value}");
            let (bytes, len) = varint_bytes(value);
            assert_eq!(&bytes[..len], &out[..], "varint_bytes of {value}");
            let mut decoder = Decoder::new(&out);
            assert_eq!(decoder.varint(), Some(value));
            assert!(decoder.is_empty());
        }
    }

    #[test]
    fn malformed_varints_are_rejected() {
        // Eleven continuation bytes: too long.
        assert_eq!(Decoder::new(&[0xff; 11]).varint(), None);
        // Ten bytes whose last carries more than the 64th bit.
        let mut too_big = vec![0xff; 9];
        too_big.push(0x02);
        assert_eq!(Decoder::new(&too_big).varint(), None);
        // Truncated.
        assert_eq!(Decoder::new(&[0x80]).varint(), None);
    }

    #[test]
    fn lengths_cannot_exceed_the_remaining_bytes() {
        let mut out = Vec::new();
        put_varint(&mut out, 5);
        out.extend_from_slice(b"abcd");
        assert_eq!(Decoder::new(&out).length_prefixed(), None);
        out.push(b'e');
        assert_eq!(Decoder::new(&out).length_prefixed(), Some(&b"abcde"[..]));
    }

    #[test]
    fn fixed_width_reads_are_bounds_checked() {
        assert_eq!(get_u32_at(&[1, 0, 0], 0), None);
        assert_eq!(get_u16_at(&[1, 2, 3], 1), Some(0x0302));
        assert_eq!(get_u16_at(&[1, 2, 3], 2), None);
        assert_eq!(get_u16_at(&[0; 2], usize::MAX), None);
        assert_eq!(get_u64_at(&[1, 0, 0, 0, 0, 0, 0, 0], 0), Some(1));
        assert_eq!(get_u64_at(&[0; 8], usize::MAX), None);
        let mut decoder = Decoder::new(&[1, 2]);
        assert_eq!(decoder.u32(), None);
        assert_eq!(decoder.position(), 0);
    }

    #[test]
    fn crc_of_two_slices_equals_crc_of_their_concatenation() {
        assert_eq!(crc32c_two(b"hello ", b"world"), crc32c(b"hello world"));
    }
}
