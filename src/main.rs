//! The `sunaba` command.

fn main() {}
