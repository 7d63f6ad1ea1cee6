//! Architecture-specific code. Only x86-64 today; the virtualization backends (`svm/`,
//! `vmx/`) will live under it behind one vendor-neutral vCPU interface.
pub mod x86_64;
