//! PocketBase filter syntax (to be written).
