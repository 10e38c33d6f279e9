//! MongoDB-style JSON filters (to be written).
