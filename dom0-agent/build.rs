//! Links the dom0 agent with its own linker script when building for bare metal.
use std::{env, path::PathBuf};

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    for input in ["linker.ld", "src/boot.S"] {
        println!("cargo:rerun-if-changed={}", dir.join(input).display());
    }
    if env::var("TARGET").as_deref() == Ok("x86_64-unknown-none") {
        println!("cargo:rustc-link-arg-bins=-T{}", dir.join("linker.ld").display());
        println!("cargo:rustc-link-arg-bins=--no-dynamic-linker");
    }
}
