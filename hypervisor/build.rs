//! Links the hypervisor with the workspace's linker script when building for bare metal.
use std::{env, path::PathBuf};

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("..");
    for input in ["linker.ld", "boot/entry.S", "boot/ap_trampoline.S"] {
        println!("cargo:rerun-if-changed={}", root.join(input).display());
    }
    if env::var("TARGET").as_deref() == Ok("x86_64-unknown-none") {
        println!("cargo:rustc-link-arg-bins=-T{}", root.join("linker.ld").display());
        println!("cargo:rustc-link-arg-bins=--no-dynamic-linker");
    }
}
