//! Integration tests of the `nanodb` binary: one binary, a module per command. Each test
//! runs the real executable in a temporary directory.

mod process;
mod serve;
mod superuser;
