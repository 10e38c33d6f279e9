//! Authentication: password hashing (`password`, over `argon`), tokens (`token`), who a request comes
//! from (`requester`), superusers and the first-run install token (`superusers`,
//! `install`).
//!
//! Thread safety: see each module; everything here is shareable across requests.

pub mod argon;
pub mod install;
pub mod password;
pub mod requester;
pub mod superusers;
pub mod token;
