//! Architecture-specific code. Only x86-64 today; the virtualization backends (`svm/`,
//! `vmx/`) live under it behind one vendor-neutral vCPU interface (`crate::virt`).
pub mod x86_64;
