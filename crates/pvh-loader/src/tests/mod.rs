//! Host tests: synthetic ELF32/ELF64 images, every error variant, start info layout, and a
//! mutation-based robustness test.

mod boot_data;
mod builder;
mod fuzz;
mod load;
mod parse;
mod reloc;
mod start_info;
